"""The evaluation protocol for interest models: a time split on each shopper's last order. Pure numpy.

**Protocol** (used by ``adengine_eval_interests``, by the scheduled training's weight selection and
by the encoder fine-tuning, so that every figure means the same thing):

1. Orders are purchase events grouped by their order (the order key of the purchase's idempotency
   key; events without one are grouped by shopper and time). Each shopper's *last order* is the one
   placed last.
2. The **cut-off** is the time by which ``1 - test_share`` of the shoppers with an order had placed
   their last one. Shoppers whose last order falls at or after the cut-off are the *test shoppers*.
3. Everything that is *learned* (popularity, the collaborative factors, co-occurrence, the weights)
   is fitted only on events before the cut-off: a time split, so that no other shopper's later
   behaviour leaks into a test shopper's ranking.
4. A test shopper's **history** is their own behaviour strictly before their last order (also the
   part after the cut-off: that is how a trained model meets a shopper in production, by folding
   them in). Every line of the last order is a **target**.
5. Products the shopper bought before are excluded from the ranking and from the targets by default
   (``include_bought`` keeps them, for shops with repeat purchases). A shopper with no target left or
   no history is not evaluated.
6. Metrics over test shoppers: HR@10 (a target in the top 10), NDCG@10, MRR (reciprocal rank of the
   best-ranked target in the whole catalog), each with a 95 % bootstrap interval over shoppers, and
   catalog coverage (distinct products in any top 10 / catalog size).

Weight selection runs the same protocol on the events before the cut-off (a validation cut-off inside
the training period), so the weights are chosen without seeing the test orders.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

KINDS = ("search", "view", "cart", "purchase")
KIND_CODE = {k: i for i, k in enumerate(KINDS)}
PURCHASE = KIND_CODE["purchase"]


@dataclass
class EventLog:
    """Behaviour as aligned arrays; ``item`` indexes the catalog (-1: a search or a product outside it)."""

    user: np.ndarray  # int64 shopper ids
    item: np.ndarray  # int64 catalog index or -1
    kind: np.ndarray  # int8 code (KIND_CODE)
    time: np.ndarray  # float64 epoch seconds
    order: np.ndarray  # int64 order number for purchases (-1 otherwise)
    n_items: int

    def __len__(self) -> int:
        return len(self.user)

    def subset(self, mask: np.ndarray) -> EventLog:
        return EventLog(
            self.user[mask], self.item[mask], self.kind[mask], self.time[mask], self.order[mask], self.n_items
        )


@dataclass
class Case:
    """One test shopper: their history, the last order's products and what they had bought before."""

    user: int
    at: float
    targets: np.ndarray  # catalog indexes
    exclude: np.ndarray  # catalog indexes bought before (excluded from the ranking unless include_bought)
    history: np.ndarray  # positions in the log, oldest first


@dataclass
class Split:
    cutoff: float
    train: np.ndarray  # bool mask over the log: events used for fitting
    cases: list[Case]
    protocol: dict = field(default_factory=dict)


class ProtocolError(ValueError):
    """The log cannot be evaluated (no orders, nobody with history); the message says why."""


def last_orders(log: EventLog) -> dict[int, tuple[float, int]]:
    """Each shopper's last order: (time, order number)."""
    p = np.flatnonzero(log.kind == PURCHASE)
    out: dict[int, tuple[float, int]] = {}
    for i in p[np.lexsort((log.order[p], log.time[p]))]:  # later orders overwrite earlier ones
        out[int(log.user[i])] = (float(log.time[i]), int(log.order[i]))
    return out


def split(
    log: EventLog,
    *,
    test_share: float = 0.25,
    include_bought: bool = False,
    before: float | None = None,
    max_history: int | None = None,
) -> Split:
    """The protocol's split of ``log`` (restricted to events before ``before`` when given)."""
    if not 0 < test_share < 1:
        raise ProtocolError(f"test share must be between 0 and 1, not {test_share}")
    scope = np.ones(len(log), bool) if before is None else log.time < before
    sub = log.subset(scope)
    positions = np.flatnonzero(scope)
    last = last_orders(sub)
    if not last:
        raise ProtocolError("no shopper has an order in the behaviour log: nothing to evaluate")
    times = np.array(sorted(t for t, _ in last.values()))
    cutoff = float(np.quantile(times, 1.0 - test_share, method="lower"))
    if cutoff <= times[0]:  # every order at one moment: nothing to fit on
        later = times[times > times[0]]
        cutoff = float(later[0]) if len(later) else cutoff
    by_user: dict[int, list[int]] = {}
    order_idx = np.argsort(sub.time, kind="stable")
    for j in order_idx:
        by_user.setdefault(int(sub.user[j]), []).append(int(j))
    cases = []
    for user, (at, order) in last.items():
        if at < cutoff:
            continue
        evs = np.array(by_user.get(user, []), dtype=np.int64)
        if not len(evs):
            continue
        in_order = (sub.kind[evs] == PURCHASE) & (sub.order[evs] == order)
        targets = np.unique(sub.item[evs[in_order]])
        targets = targets[targets >= 0]
        earlier = evs[sub.time[evs] < at]
        bought = np.unique(sub.item[earlier[(sub.kind[earlier] == PURCHASE)]])
        bought = bought[bought >= 0]
        if not include_bought:
            targets = np.setdiff1d(targets, bought)
        if max_history is not None and len(earlier) > max_history:
            earlier = earlier[-max_history:]
        if not len(targets) or not len(earlier):
            continue
        cases.append(Case(user, at, targets, bought, positions[earlier]))
    cases.sort(key=lambda c: c.user)
    return Split(
        cutoff=cutoff,
        train=scope & (log.time < cutoff),
        cases=cases,
        protocol={
            "split": "time",
            "holdout": "last order per shopper",
            "test_share": test_share,
            "cutoff": cutoff,
            "bought": "included" if include_bought else "excluded",
            "fitted_on": "events before the cut-off",
        },
    )


def ranked(scores: np.ndarray, cases: list[Case], *, include_bought: bool) -> np.ndarray:
    """Scores with each case's earlier purchases pushed to the bottom (unless include_bought)."""
    scores = np.array(scores, dtype=np.float32, copy=True)
    if not include_bought:
        for r, c in enumerate(cases):
            if len(c.exclude):
                scores[r, c.exclude] = -np.inf
    return scores


def target_mask(cases: list[Case], n_items: int) -> np.ndarray:
    """(cases x items) True where the product is one of the case's targets."""
    mask = np.zeros((len(cases), n_items), bool)
    for r, c in enumerate(cases):
        mask[r, c.targets] = True
    return mask


def case_metrics(scores: np.ndarray, cases: list[Case], *, k: int = 10, mask: np.ndarray | None = None) -> dict:
    """Per case: hit@k, NDCG@k, reciprocal rank of the best target in the catalog; and the top-k lists."""
    n, n_items = scores.shape
    mask = target_mask(cases, n_items) if mask is None else mask
    k = min(k, n_items)
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k] if n_items > k else np.tile(np.arange(n_items), (n, 1))
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
    top = np.take_along_axis(top, order, axis=1)
    gains = np.take_along_axis(mask, top, axis=1)
    discounts = 1.0 / np.log2(np.arange(k) + 2.0)
    n_targets = mask.sum(axis=1)
    ideal = np.array([discounts[: min(int(t), k)].sum() for t in n_targets])
    dcg = (gains * discounts).sum(axis=1)
    best = np.where(mask, scores, -np.inf).max(axis=1)
    rank = (scores > best[:, None]).sum(axis=1)
    return {
        "hit": gains.any(axis=1).astype(np.float64),
        "ndcg": np.divide(dcg, ideal, out=np.zeros(n), where=ideal > 0),
        "rr": np.where(np.isfinite(best), 1.0 / (1.0 + rank), 0.0),
        "top": top,
    }


def measure(
    scores: np.ndarray, cases: list[Case], *, include_bought: bool, mask: np.ndarray | None = None, seed: int = 0
) -> tuple[dict, np.ndarray]:
    """The protocol's figures for (cases x items) scores, and each case's hit: bought products excluded unless kept."""
    m = case_metrics(ranked(scores, cases, include_bought=include_bought), cases, mask=mask)
    return summarise(m, n_items=scores.shape[1], seed=seed), m["hit"]


def bootstrap_ci(values: np.ndarray, *, seed: int = 0, n: int = 1000) -> tuple[float, float]:
    """95 % percentile bootstrap interval of the mean."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0:
        return (0.0, 0.0)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(n, len(values)))].mean(axis=1)
    lo, hi = np.quantile(means, [0.025, 0.975])
    return (float(lo), float(hi))


def summarise(m: dict[str, np.ndarray], *, n_items: int, seed: int = 0) -> dict:
    """HR@10, NDCG@10, MRR with intervals, and coverage, from ``case_metrics``."""
    hr_lo, hr_hi = bootstrap_ci(m["hit"], seed=seed)
    nd_lo, nd_hi = bootstrap_ci(m["ndcg"], seed=seed)
    return {
        "hr10": float(m["hit"].mean()) if len(m["hit"]) else 0.0,
        "hr10_ci": [hr_lo, hr_hi],
        "ndcg10": float(m["ndcg"].mean()) if len(m["ndcg"]) else 0.0,
        "ndcg10_ci": [nd_lo, nd_hi],
        "mrr": float(m["rr"].mean()) if len(m["rr"]) else 0.0,
        "coverage": float(len(np.unique(m["top"])) / n_items) if n_items and len(m["top"]) else 0.0,
    }


def paired_comparison(a: np.ndarray, b: np.ndarray, *, seed: int = 0, n: int = 2000) -> dict:
    """Is ``b`` better than ``a`` on the same cases? Paired bootstrap of the mean difference, and a sign test.

    Returns the mean difference (b - a), its 95 % interval, the one-sided bootstrap p-value
    (share of resamples with difference <= 0), and the exact two-sided sign-test p-value over the
    cases where they differ.
    """
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    d = b - a
    if not len(d):
        return {"diff": 0.0, "ci": [0.0, 0.0], "p_bootstrap": 1.0, "p_sign": 1.0, "wins": 0, "losses": 0}
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(n, len(d)))].mean(axis=1)
    wins, losses = int((d > 0).sum()), int((d < 0).sum())
    return {
        "diff": float(d.mean()),
        "ci": [float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))],
        "p_bootstrap": float((means <= 0).mean()),
        "p_sign": sign_test(wins, losses),
        "wins": wins,
        "losses": losses,
    }


def sign_test(wins: int, losses: int) -> float:
    """Exact two-sided binomial sign-test p-value (ties dropped)."""
    n = wins + losses
    if n == 0:
        return 1.0
    k = min(wins, losses)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return float(min(1.0, 2 * tail))
