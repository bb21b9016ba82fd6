"""Fitting the hybrid interest model on a behaviour log, choosing its settings per shop, and baselines.

Pure numpy / scipy (and ``implicit``); the database side is in ``adengine.selectors.evaluation``.
The same functions serve the offline evaluation (fit before the test cut-off, score the test
shoppers) and the scheduled training (fit before a validation cut-off, choose, refit on everything).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse

from adengine.ml import hybrid, protocol
from adengine.ml.hybrid import Params, Parts
from adengine.ml.protocol import PURCHASE, Case, EventLog, Split

log = logging.getLogger(__name__)

DAY = 86400.0
MIN_VALIDATION_CASES = 20  # fewer held-out shoppers than this cannot choose weights
MIN_COLLAB_USERS = 10  # fewer shoppers with behaviour than this cannot fit factors
RECENT_DAYS = 30.0

# content(cases) -> (len(cases) x d) content vectors of those shoppers as of each case's time
ContentFn = Callable[[list[Case]], np.ndarray]


@dataclass
class Inputs:
    """What fitting needs: the log, the products' content vectors and the shoppers' content function."""

    log: EventLog
    item_content: np.ndarray  # (items x d) unit e5 vectors; zero rows where a product has none
    user_content: ContentFn
    kind_weights: np.ndarray  # weight per protocol.KINDS code


@dataclass
class Fitted:
    """Components fitted on the events before ``cutoff``."""

    cutoff: float
    params: Params
    factors: np.ndarray | None  # (items x f) product side, or None when there was too little behaviour
    gram: np.ndarray | None  # ALS: YᵀY for the fold-in
    fold: np.ndarray | None  # EASE: the side a shopper's behaviour is mapped through
    factor_scale: float
    popularity: np.ndarray  # (items,) in [0, 1]
    content_mean: np.ndarray
    notes: list[str] = field(default_factory=list)


def _weights(inputs: Inputs, idx: np.ndarray, now: float, half_life: float) -> np.ndarray:
    ages = (now - inputs.log.time[idx]) / DAY
    return inputs.kind_weights[inputs.log.kind[idx]] * hybrid.decay(ages, half_life)


def fit(inputs: Inputs, train: np.ndarray, cutoff: float, params: Params, *, seed: int = 0) -> Fitted:
    """Popularity and collaborative factors from the events selected by ``train``."""
    lg = inputs.log
    idx = np.flatnonzero(train & (lg.item >= 0))
    notes: list[str] = []
    users, user_idx = np.unique(lg.user[idx], return_inverse=True)
    factors = gram = fold = None
    scale = 1.0
    active_items = len(np.unique(lg.item[idx]))
    if len(users) < MIN_COLLAB_USERS or active_items < 3:
        notes.append(
            f"collaborative part not fitted: {len(users)} shoppers and {active_items} products with behaviour "
            f"(needs at least {MIN_COLLAB_USERS} shoppers and 3 products)"
        )
    else:
        rows = user_idx
        if params.session_hours > 0:
            rows = hybrid.sessions(lg.user[idx], lg.time[idx], params.session_hours)
        matrix = hybrid.interaction_matrix(
            rows, lg.item[idx], inputs.kind_weights[lg.kind[idx]], (int(rows.max()) + 1, lg.n_items)
        )
        if params.method == "ease":
            fold, factors = hybrid.fit_ease(matrix, params)
        else:
            factors = hybrid.fit_factors(matrix, params, seed=seed)
            gram = factors.T.astype(np.float64) @ factors.astype(np.float64)
        norms = np.linalg.norm(factors, axis=1)
        scale = float(norms.max()) if len(norms) and norms.max() > 0 else 1.0
    has = np.linalg.norm(inputs.item_content, axis=1) > 1e-9
    mean = inputs.item_content[has].mean(axis=0) if has.any() else np.zeros(inputs.item_content.shape[1], np.float32)
    pop = _popularity(inputs, train, cutoff, params.half_life_days)
    return Fitted(cutoff, params, factors, gram, fold, scale, pop, mean.astype(np.float32), notes)


def case_rows(inputs: Inputs, cases: list[Case], half_life: float):
    """(cases x items) recency-weighted behaviour of each case's history."""
    lg = inputs.log
    rows, cols, vals = [], [], []
    for r, c in enumerate(cases):
        h = c.history[lg.item[c.history] >= 0]
        rows.append(np.full(len(h), r))
        cols.append(lg.item[h])
        vals.append(_weights(inputs, h, c.at, half_life))
    if not rows:
        return sparse.csr_matrix((0, lg.n_items), dtype=np.float32)
    return hybrid.interaction_matrix(
        np.concatenate(rows), np.concatenate(cols), np.concatenate(vals), (len(cases), lg.n_items)
    )


def parts(inputs: Inputs, fitted: Fitted, cases: list[Case], *, content: np.ndarray | None = None) -> Parts:
    """Each component's shopper and product sides for ``cases``."""
    content = inputs.user_content(cases) if content is None else content
    users = {"content": hybrid.centred(content, fitted.content_mean)}
    items = {"content": hybrid.centred(inputs.item_content, fitted.content_mean)}
    if fitted.factors is not None:
        rows = case_rows(inputs, cases, fitted.params.half_life_days)
        found = hybrid.user_factors(fitted.params, rows, factors=fitted.factors, fold=fitted.fold, gram=fitted.gram)
        users["collab"] = hybrid.unit_rows(found)
        items["collab"] = fitted.factors / fitted.factor_scale
    users["popularity"] = np.ones((len(cases), 1), np.float32)
    items["popularity"] = fitted.popularity.reshape(-1, 1)
    return Parts(users, items)


def objective(summary: dict) -> float:
    """What the settings search and the switch maximise: HR@10 + NDCG@10 + MRR on held-out orders.

    MRR looks past the top 10, which makes the choice less noisy on a few hundred shoppers.
    """
    return summary["hr10"] + summary["ndcg10"] + summary["mrr"]


@dataclass
class Choice:
    """The settings a shop's data chose, and the validation figures behind the choice."""

    params: Params
    weights: dict[str, float]
    spread: dict[str, float]
    validation: dict  # name -> summary (components alone, blend, baselines)
    cases: int
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


def params_grid(n_items: int, n_events: int, base: Params, *, ease_unit: float | None = None) -> list[Params]:
    """Candidate settings, fewer for large logs (each ALS setting costs one fit, each EASE one inverse).

    ALS: 16-64 factors x confidence 2 or 10, on whole histories. EASE (on the ``EASE_MAX_ITEMS`` most
    active products): regularisation 1 or 4 times ``ease_unit`` (the mean diagonal of XᵀX), so the grid
    scales with the shop's data, on whole histories or on 3-hour sessions. Each with the configured
    half-life and 60 days.
    """
    factors = [f for f in (16, 32, 64) if f < max(4, n_items // 4)] or [8]
    if n_events > 2_000_000:
        factors = factors[-1:]
    half_lives = sorted({base.half_life_days, 60.0})
    out = [
        Params(factors=f, regularization=base.regularization, alpha=a, iterations=base.iterations, half_life_days=h)
        for f in factors
        for a in (2.0, 10.0)
        for h in half_lives
    ]
    if ease_unit is not None:
        out += [
            Params(
                factors=hybrid.MAX_FACTORS,
                regularization=m * ease_unit,
                half_life_days=h,
                method="ease",
                session_hours=s,
            )
            for m in (1.0, 4.0)
            for s in (0.0, 3.0)
            for h in half_lives
        ]
    return out


def ease_regularisation_unit(inputs: Inputs, train: np.ndarray) -> float:
    """The scale of EASE's regularisation on this log (see ``params_grid``)."""
    lg = inputs.log
    idx = np.flatnonzero(train & (lg.item >= 0))
    _, user_idx = np.unique(lg.user[idx], return_inverse=True)
    matrix = hybrid.interaction_matrix(
        user_idx,
        lg.item[idx],
        inputs.kind_weights[lg.kind[idx]],
        (int(user_idx.max()) + 1 if len(idx) else 0, lg.n_items),
    )
    return hybrid.ease_scale(matrix)


def choose(
    inputs: Inputs,
    *,
    before: float | None = None,
    test_share: float = 0.25,
    include_bought: bool = False,
    base: Params | None = None,
    grid: list[Params] | None = None,
    seed: int = 0,
    step: float = 0.1,
    progress: Callable[[int, int], None] | None = None,
) -> Choice:
    """Choose the collaborative settings and the blend's weights on a validation split of the log before ``before``.

    ``progress(done, total)`` is called after each of the grid's settings is tried."""
    started = time.monotonic()
    base = base or Params()
    try:
        val = protocol.split(inputs.log, test_share=test_share, include_bought=include_bought, before=before)
    except protocol.ProtocolError as exc:
        return _content_only(f"no validation split: {exc}", started)
    if len(val.cases) < MIN_VALIDATION_CASES:
        return _content_only(
            f"too little behaviour to choose weights: {len(val.cases)} shoppers with an order after earlier "
            f"behaviour before the validation cut-off (needs {MIN_VALIDATION_CASES}); content only",
            started,
        )
    grid = grid or params_grid(
        inputs.log.n_items, int(val.train.sum()), base, ease_unit=ease_regularisation_unit(inputs, val.train)
    )
    mask = protocol.target_mask(val.cases, inputs.log.n_items)
    content = inputs.user_content(val.cases)
    best: tuple[float, Params, dict, dict, dict] | None = None
    fits: dict[tuple, Fitted] = {}
    notes: list[str] = []
    for i, p in enumerate(grid, 1):
        key = _fit_key(p)
        if key not in fits:
            fits[key] = fit(inputs, val.train, val.cutoff, p, seed=seed)
        f = _with_params(fits[key], inputs, val, p)
        pr = parts(inputs, f, val.cases, content=content)
        spread = hybrid.spreads(pr, seed=seed)
        names = [n for n in hybrid.COMPONENTS if n in pr.users]
        for w in hybrid.weight_grid(names, step):
            s, _ = protocol.measure(
                hybrid.blend_scores(pr, w, spread), val.cases, include_bought=include_bought, mask=mask
            )
            if best is None or objective(s) > best[0] + 1e-12:
                best = (objective(s), p, w, spread, s)
        notes.extend(n for n in f.notes if n not in notes)
        if progress:
            progress(i, len(grid))
    assert best is not None
    _, params, weights, spread, summary = best
    pr = parts(inputs, _with_params(fits[_fit_key(params)], inputs, val, params), val.cases, content=content)
    validation = {"blend": summary}
    for name in pr.users:
        validation[name], _ = protocol.measure(
            pr.scores(name) / spread[name], val.cases, include_bought=include_bought, mask=mask
        )
    return Choice(
        params=params,
        weights={n: float(weights.get(n, 0.0)) for n in hybrid.COMPONENTS},
        spread=spread,
        validation=validation,
        cases=len(val.cases),
        notes=notes,
        seconds=time.monotonic() - started,
    )


def _fit_key(p: Params) -> tuple:
    """What a fit depends on (the half-life only weights the fold-in and popularity)."""
    return (p.method, p.factors, p.alpha, p.regularization, p.iterations, p.session_hours)


def _popularity(inputs: Inputs, train: np.ndarray, cutoff: float, half_life: float) -> np.ndarray:
    """Each product's recency-weighted popularity from the events selected by ``train``, as of ``cutoff``."""
    lg = inputs.log
    idx = np.flatnonzero(train & (lg.item >= 0))
    counts = np.bincount(lg.item[idx], weights=_weights(inputs, idx, cutoff, half_life), minlength=lg.n_items)
    return hybrid.popularity(counts)


def _with_params(f: Fitted, inputs: Inputs, val: Split, p: Params) -> Fitted:
    """A fit reused for settings that differ only in what a fit does not depend on (the half-life)."""
    return dataclasses.replace(f, params=p, popularity=_popularity(inputs, val.train, val.cutoff, p.half_life_days))


def score(inputs: Inputs, val: Split, params: Params, weights: dict, *, seed: int = 0) -> dict:
    """The validation figures of fixed settings and weights (a live model's) on a split ``choose`` would make."""
    pr = parts(inputs, fit(inputs, val.train, val.cutoff, params, seed=seed), val.cases)
    summary, _ = protocol.measure(
        hybrid.blend_scores(pr, weights, hybrid.spreads(pr, seed=seed)), val.cases, include_bought=False
    )
    return summary


def _content_only(note: str, started: float) -> Choice:
    return Choice(
        params=Params(),
        weights={"content": 1.0, "collab": 0.0, "popularity": 0.0},
        spread={n: 1.0 for n in hybrid.COMPONENTS},
        validation={},
        cases=0,
        notes=[note],
        seconds=time.monotonic() - started,
    )


def baselines(inputs: Inputs, sp: Split, *, seed: int = 0) -> dict[str, np.ndarray]:
    """(cases x items) scores of random, popularity, recent popularity and bought-together, fitted before cut-off."""
    lg = inputs.log
    n, m = len(sp.cases), lg.n_items
    buys = np.flatnonzero(sp.train & (lg.kind == PURCHASE) & (lg.item >= 0))
    pairs = np.unique(np.stack([lg.user[buys], lg.item[buys]]), axis=1) if len(buys) else np.zeros((2, 0), np.int64)
    buyers = np.bincount(pairs[1], minlength=m).astype(np.float32)
    recent = buys[lg.time[buys] >= sp.cutoff - RECENT_DAYS * DAY]
    recent_pairs = (
        np.unique(np.stack([lg.user[recent], lg.item[recent]]), axis=1) if len(recent) else np.zeros((2, 0), np.int64)
    )
    recent_buyers = np.bincount(recent_pairs[1], minlength=m).astype(np.float32)
    rng = np.random.default_rng(seed)
    # bought together: item-item cosine over shoppers' purchase sets, applied to each case's history
    _, u_idx = np.unique(pairs[0], return_inverse=True)
    ui = sparse.csr_matrix(
        (np.ones(pairs.shape[1], np.float32), (u_idx, pairs[1])), shape=(u_idx.max() + 1 if len(u_idx) else 0, m)
    )
    co = (ui.T @ ui).tocsr().astype(np.float32)
    co.setdiag(0)
    co.eliminate_zeros()
    norm = np.sqrt(np.maximum(buyers, 1.0))
    co = sparse.diags(1 / norm) @ co @ sparse.diags(1 / norm)
    rows = case_rows(inputs, sp.cases, math.inf)
    tiebreak = buyers / (buyers.max() + 1.0) * 1e-3  # ties (no co-purchase) fall back to popularity
    return {
        "random": rng.random((n, m), dtype=np.float32),
        "popularity": np.tile(buyers, (n, 1)),
        "recent_popularity": np.tile(recent_buyers + 1e-3 * buyers / (buyers.max() + 1.0), (n, 1)),
        "cooccurrence": np.asarray((rows @ co).todense(), np.float32) + tiebreak,
    }
