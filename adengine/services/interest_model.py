"""Training the hybrid interest model on a schedule, switching it on when it wins, folding shoppers in.

``train_interest_model`` (Celery task ``adengine.train_interest_model``, beat every
``INTEREST_TRAIN_INTERVAL_SECONDS``) fits the components on the older behaviour, chooses the
collaborative settings and the weights on a later held-out slice (``adengine.ml.interest_fit.choose``),
measures the live model's settings on the same slice, records every figure, and switches only when
the new blend beats the live one. Switching refits on all the behaviour, writes each product's factors,
popularity and hybrid vector, and recomputes every shopper's hybrid vector by fold-in (no encoder).

Between trainings, a changed shopper's hybrid vector is folded in by the incremental refresh
(``adengine.services.interests.refresh_interests``) from the stored product factors in one solve.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from django.db import transaction
from django.utils import timezone
from scipy import sparse

from adengine.conf import settings as ad_settings
from adengine.ml import hybrid, interest_fit, protocol
from adengine.ml.encoder import Encoder, get_encoder
from adengine.ml.hybrid import HybridVectors, Params
from adengine.models import InterestModel, ProductVector, Shopper
from adengine.selectors import evaluation
from adengine.selectors.shoppers import recent_events

log = logging.getLogger(__name__)
DAY = interest_fit.DAY


@dataclass
class ActiveModel:
    """The active interest model in the form the fold-in and the vectors need (cached per process)."""

    version: str
    vectors: HybridVectors
    gram: np.ndarray | None

    @property
    def params(self) -> Params:
        return self.vectors.params

    @property
    def rank(self) -> int:
        """Width of the collaborative part (0: content and popularity only)."""
        return int(self.params.factors)


_cache: dict[str, ActiveModel | None] = {}


def active_model() -> ActiveModel | None:
    """The active model, re-read when another process switched (one indexed query)."""
    row = InterestModel.objects.filter(is_active=True).values_list("version", flat=True).first()
    if row is None:
        return None
    if row not in _cache:
        m = InterestModel.objects.get(version=row)
        gram = np.asarray(m.gram, np.float64) if m.gram else None
        _cache.clear()
        _cache[row] = ActiveModel(
            version=m.version,
            vectors=HybridVectors(
                weights=dict(m.weights),
                spread=dict(m.spread),
                content_mean=np.asarray(m.content_mean, np.float32),
                factor_scale=float(m.factor_scale),
                params=Params(**m.params),
                notes=list(m.notes),
            ),
            gram=gram,
        )
    return _cache[row]


def shopper_hybrid(
    *, model: ActiveModel, content: np.ndarray | None, items: dict, factors: dict, at: float
) -> np.ndarray | None:
    """One shopper's hybrid vector from their content vector and behaviour.

    ``items`` maps product pk -> list of (kind, epoch seconds); ``factors`` maps product pk -> the
    factors their behaviour is folded in through (ALS: the product's factors; EASE: its fold side).
    """
    if content is None:
        return None
    p = model.params
    k = model.rank
    f = np.zeros((1, k), np.float32)
    pids = [pid for pid in items if pid in factors] if k else []
    if pids:
        y = np.stack([np.asarray(factors[pid], np.float32)[:k] for pid in pids])
        kind_w = evaluation.kind_weights()
        row = np.zeros((1, len(pids)), np.float32)
        for j, pid in enumerate(pids):
            kinds = np.array([protocol.KIND_CODE[kind] for kind, _ in items[pid]])
            ages = np.array([(at - t) / DAY for _, t in items[pid]])
            row[0, j] = float((kind_w[kinds] * hybrid.decay(ages, p.half_life_days)).sum())
        f = hybrid.user_factors(p, row, factors=y, fold=y, gram=model.gram)
    return model.vectors.shopper_vectors(np.asarray(content, np.float32).reshape(1, -1), f)[0]


def train_interest_model(
    *,
    encoder: Encoder | None = None,
    seed: int = 0,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Fit, choose, compare with the live model, and switch when the new blend wins (or ``force``).

    ``progress(done, total)`` follows the settings tried while choosing."""
    started = time.monotonic()
    encoder = encoder or get_encoder()
    try:
        inputs, loaded = evaluation.build_inputs(encoder=encoder)
    except ValueError as exc:
        return {"trained": False, "reason": str(exc)}
    if len(inputs.log) == 0:
        return {"trained": False, "reason": "no behaviour yet"}
    live = InterestModel.objects.filter(is_active=True).first()
    base = evaluation.base_params()
    choice = interest_fit.choose(inputs, base=base, seed=seed, progress=progress)
    live_figure = None
    if live is not None and choice.validation:
        live_figure = _score_weights(inputs, Params(**live.params), live.weights, seed=seed)
    blend = choice.validation.get("blend")
    if live is None:
        switch, why = True, "no model was active"
    elif force:
        switch, why = True, "switched by hand (--force)"
    elif blend is None:
        switch, why = False, "not switched: " + "; ".join(choice.notes)
    elif live_figure is None or interest_fit.objective(blend) > interest_fit.objective(live_figure):
        switch = True
        why = (
            f"switched: validation HR@10 {blend['hr10']:.3f} / NDCG@10 {blend['ndcg10']:.3f} against the live "
            f"model's {live_figure['hr10']:.3f} / {live_figure['ndcg10']:.3f}"
            if live_figure
            else "switched: the live model could not be measured"
        )
    else:
        switch = False
        why = (
            f"not switched: validation HR@10 {blend['hr10']:.3f} / NDCG@10 {blend['ndcg10']:.3f} does not beat the "
            f"live model's {live_figure['hr10']:.3f} / {live_figure['ndcg10']:.3f}"
        )
    now = time.time()
    fitted = interest_fit.fit(inputs, np.ones(len(inputs.log), bool), now, choice.params, seed=seed)
    # the stored width of the collaborative part (capped by the catalog; 0 when it could not be fitted)
    fitted.params = dataclasses.replace(
        choice.params, factors=fitted.factors.shape[1] if fitted.factors is not None else 0
    )
    metrics = {"validation": choice.validation, "validation_cases": choice.cases, "live": live_figure}
    version = "im-" + timezone.now().strftime("%Y%m%d-%H%M%S-%f")
    spread = choice.spread if choice.validation else {n: 1.0 for n in hybrid.COMPONENTS}
    model = InterestModel.objects.create(
        version=version,
        weights=choice.weights,
        params=fitted.params.as_dict(),
        spread=spread,
        content_mean=[float(x) for x in fitted.content_mean],
        factor_scale=fitted.factor_scale,
        gram=fitted.gram.tolist() if fitted.gram is not None else [],
        metrics=metrics,
        notes=list(dict.fromkeys(choice.notes + fitted.notes)),
        events=len(inputs.log),
        shoppers=len(np.unique(inputs.log.user)),
        decision=why[:300],
    )
    result = {
        "trained": True,
        "version": version,
        "weights": choice.weights,
        "params": choice.params.as_dict(),
        "validation": choice.validation,
        "live": live_figure,
        "switched": switch,
        "decision": why,
        "notes": model.notes,
    }
    if switch:
        result.update(activate(model=model, fitted=fitted, catalog=loaded.catalog, item_content=inputs.item_content))
    result["seconds"] = round(time.monotonic() - started, 1)
    log.info("interest model: %s", {k: result[k] for k in ("version", "weights", "switched", "decision")})
    return result


def _score_weights(inputs: interest_fit.Inputs, params: Params, weights: dict, *, seed: int) -> dict | None:
    """The validation figure of fixed settings and weights (the live model's) on the same split ``choose`` uses."""
    try:
        val = protocol.split(inputs.log)
    except protocol.ProtocolError:
        return None
    if len(val.cases) < interest_fit.MIN_VALIDATION_CASES:
        return None
    return interest_fit.score(inputs, val, params, weights, seed=seed)


@transaction.atomic
def activate(*, model: InterestModel, fitted: interest_fit.Fitted, catalog: list, item_content: np.ndarray) -> dict:
    """Make ``model`` the active one: product factors, popularity and hybrid vectors, then every shopper's."""
    vectors = HybridVectors(
        weights=dict(model.weights),
        spread=dict(model.spread),
        content_mean=fitted.content_mean,
        factor_scale=fitted.factor_scale,
        params=fitted.params,
    )
    factors = fitted.factors if fitted.factors is not None else np.zeros((len(catalog), 0), np.float32)
    rows = vectors.product_vectors(item_content, factors, fitted.popularity)
    padded = np.zeros((len(catalog), hybrid.MAX_FACTORS), np.float32)
    if factors.size:
        padded[:, : factors.shape[1]] = factors
    fold = None
    if fitted.fold is not None:
        fold = np.zeros((len(catalog), hybrid.MAX_FACTORS), np.float32)
        fold[:, : fitted.fold.shape[1]] = fitted.fold
    existing = {pv.product_id: pv for pv in ProductVector.objects.filter(product_id__in=catalog)}
    changed = []
    for i, pk in enumerate(catalog):
        pv = existing.get(pk)
        if pv is None:
            continue
        pv.factors = padded[i]
        pv.fold_factors = fold[i] if fold is not None else None
        pv.popularity = float(fitted.popularity[i])
        pv.hybrid = rows[i]
        pv.hybrid_model = model.version
        changed.append(pv)
    ProductVector.objects.bulk_update(
        changed, ["factors", "fold_factors", "popularity", "hybrid", "hybrid_model"], batch_size=500
    )
    InterestModel.objects.filter(is_active=True).update(is_active=False)
    InterestModel.objects.filter(pk=model.pk).update(is_active=True)
    _cache.clear()
    return {"products": len(changed), "shoppers": refresh_hybrids()}


_FACTORS: dict = {"version": None, "rows": {}, "absent": set()}  # the active model's product factors, per process


def product_factors(product_ids: set, *, model: ActiveModel) -> dict:
    """The active model's factors of the given products that have them (ALS: factors; EASE: the fold side), read
    once per process and model: they change only when a model is activated, under a new version."""
    column = "fold_factors" if model.params.method == "ease" else "factors"
    if _FACTORS["version"] != (model.version, column):
        _FACTORS.update(version=(model.version, column), rows={}, absent=set())
    rows, absent = _FACTORS["rows"], _FACTORS["absent"]
    unknown = [pk for pk in product_ids if pk not in rows and pk not in absent]
    if unknown:
        found = dict(
            ProductVector.objects.filter(product_id__in=unknown, **{f"{column}__isnull": False}).values_list(
                "product_id", column
            )
        )
        rows.update((pk, np.asarray(v, np.float32)) for pk, v in found.items())
        absent.update(pk for pk in unknown if pk not in found)
    return {pk: rows[pk] for pk in product_ids if pk in rows}


def hybrid_vectors_for(content: dict, *, model: ActiveModel, now, events: dict | None = None) -> dict:
    """Hybrid vectors of shoppers (pk -> content vector) from their recent behaviour and the stored product factors."""
    if events is None:
        events = recent_events(shopper_ids=list(content), limit_per_shopper=int(ad_settings.PROFILE_MAX_EVENTS))
    rows = [(sid, e.kind, e.product_id, e.query, e.occurred_at) for sid, evs in events.items() for e in evs]
    return hybrid_vectors_from_rows(content, model=model, now=now, rows=rows)


def hybrid_vectors_from_rows(content: dict, *, model: ActiveModel, now, rows: list[tuple]) -> dict:
    """``hybrid_vectors_for`` from a batch's ``recent_event_rows``: the (shopper, product) fold-in weights summed by one
    sparse matrix built with numpy instead of a loop over each shopper's products (same sums, same float32)."""
    sids = [sid for sid, vec in content.items() if vec is not None]
    out: dict = {sid: None for sid, vec in content.items() if vec is None}
    if not sids:
        return out
    p = model.params
    k = model.rank
    f = np.zeros((len(sids), k), np.float32)
    if k:
        index = {sid: r for r, sid in enumerate(sids)}
        factors = product_factors({r[2] for r in rows if r[2] is not None}, model=model)
        code = protocol.KIND_CODE
        kept = [
            (index[sid], pid, code[kind], at.timestamp())
            for sid, kind, pid, _, at in rows
            if pid is not None and kind != "search" and pid in factors and sid in index
        ]
        if kept:
            r, pids, kinds, times = zip(*kept, strict=True)
            columns: dict = {}
            cols = [columns.setdefault(pid, len(columns)) for pid in pids]
            ages = (now.timestamp() - np.asarray(times, np.float64)) / DAY
            w = evaluation.kind_weights()[np.asarray(kinds)] * hybrid.decay(ages, p.half_life_days)
            matrix = sparse.csr_matrix((w, (r, cols)), shape=(len(sids), len(columns)))  # duplicates summed
            matrix = sparse.csr_matrix(matrix, dtype=np.float32)
            y = np.stack([np.asarray(factors[pid], np.float32)[:k] for pid in columns])
            f = hybrid.user_factors(p, matrix, factors=y, fold=y, gram=model.gram)
    content_rows = np.stack([np.asarray(content[sid], np.float32).reshape(-1) for sid in sids])
    out.update(zip(sids, model.vectors.shopper_vectors(content_rows, f), strict=True))
    return out


def refresh_hybrids(*, shopper_ids: list[int] | None = None, batch_size: int = 1000) -> int:
    """Recompute hybrid vectors from the stored content vectors by fold-in (all shoppers, or the given ones)."""
    model = active_model()
    if model is None:
        return 0
    qs = Shopper.objects.filter(personalisation=True, interest_vector__isnull=False)
    if shopper_ids is not None:
        qs = qs.filter(pk__in=shopper_ids)
    done = 0
    last = 0
    while True:
        batch = list(qs.filter(pk__gt=last).order_by("pk").values_list("pk", "interest_vector")[:batch_size])
        if not batch:
            break
        last = batch[-1][0]
        content = {pk: np.asarray(v, np.float32) for pk, v in batch}
        found = hybrid_vectors_for(content, model=model, now=timezone.now())
        changed = []
        for pk, vec in found.items():
            changed.append(Shopper(pk=pk, interest_hybrid=vec, interest_hybrid_model=model.version))
        Shopper.objects.bulk_update(changed, ["interest_hybrid", "interest_hybrid_model"], batch_size=500)
        done += len(changed)
    return done
