"""A contextual policy for the Open Bandit Dataset, built with the machinery adengine serves with: the Bayesian
logistic click model of ``serving.click_model`` (Laplace fit) on features of the logged context, and Thompson
sampling over its posterior (draw the weights, score every item for the record's context, rank).

The features of one (record, item, position), in ``Encoder.names`` order:

- ``item:<i>``, one-hot: the context-free item effect (the model without the rest is the item-only model);
- ``position:2``, ``position:3``;
- ``user:<f>=<level>``, one-hot user features: a level needs at least as many training records as it takes
  to expect one click at the training CTR (``ceil(1 / CTR)``: fewer and its weight cannot be learnt); the
  most frequent level of each feature is the baseline, and rarer or unseen levels fall to it;
- ``affinity``: log(1 + the user-item affinity of the record's user with this item);
- ``user:<f>=<level> x item_feature``: each kept level times the item's numeric feature (item_feature_0).
  Without an interaction a user feature adds the same to every item's score, so it predicts clicks but
  cannot change which items are shown; this is the smallest term that lets it.

The prior: item weights N(logit(training CTR), 1 / item precision), position weights N(0, 1), the context
weights N(0, 1 / context precision). Both precisions are chosen on the training half alone, by the held-out
log-likelihood of contiguous time folds: first the item precision for the item-only model, then, with it
fixed, the context precision.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from adengine.selectors.obd import ObdLog
from adengine.serving.click_model import Fit, fit, logit, sigmoid

POSITIONS = 3
PRECISIONS = tuple(4.0 ** np.arange(-2, 7))  # prior sd 4 .. 1/64 on the log-odds
FOLDS = 5
POSITION_PRECISION = 1.0


class ContextError(ValueError):
    """The log has no context to build the contextual features from."""


@dataclass(frozen=True)
class Encoder:
    """The feature map, learnt from the training log (which user levels are kept)."""

    n_items: int
    contextual: bool
    levels: tuple[tuple[int, str], ...] = ()  # (user feature, level) kept, baselines excluded
    min_count: int = 0
    item_feature: np.ndarray | None = None

    @classmethod
    def from_log(cls, train: ObdLog, *, contextual: bool = True) -> Encoder:
        if not contextual:
            return cls(train.n_items, False)
        if train.user is None or train.affinity is None or train.item_feature is None:
            raise ContextError(
                f"the {train.policy}/{train.campaign} log has no user features, user-item affinities or item "
                "features (the contextual model needs all three)"
            )
        ctr = float(train.click.mean())
        min_count = math.ceil(1.0 / ctr) if ctr > 0 else len(train) + 1
        levels = []
        for f in range(train.user.shape[1]):
            counts = Counter(train.user[:, f])
            baseline = counts.most_common(1)[0][0]
            levels += [(f, lv) for lv, c in sorted(counts.items()) if c >= min_count and lv != baseline]
        return cls(train.n_items, True, tuple(levels), min_count, np.asarray(train.item_feature, dtype=np.float64))

    @property
    def names(self) -> tuple[str, ...]:
        names = [f"item:{i}" for i in range(self.n_items)] + [f"position:{k + 1}" for k in range(1, POSITIONS)]
        if self.contextual:
            users = [f"user:{f}={lv[:8]}" for f, lv in self.levels]
            names += users + ["affinity"] + [f"{u} x item_feature" for u in users]
        return tuple(names)

    def user_onehot(self, log: ObdLog) -> np.ndarray:
        """(records, kept levels): 1 where the record's user has the level."""
        out = np.zeros((len(log), len(self.levels)))
        for j, (f, lv) in enumerate(self.levels):
            out[:, j] = log.user[:, f] == lv
        return out

    def affinity(self, log: ObdLog) -> np.ndarray:
        """(records, items): log(1 + affinity) of each record's user with every item."""
        return np.log1p(np.clip(log.affinity, 0.0, None))

    def design(self, log: ObdLog) -> np.ndarray:
        """The rows of the logged (record, shown item, position) triples."""
        n = len(log)
        rows = np.arange(n)
        X = np.zeros((n, len(self.names)))
        X[rows, log.item] = 1.0
        for k in range(1, POSITIONS):
            X[:, self.n_items + k - 1] = log.position == k
        if self.contextual:
            start = self.n_items + POSITIONS - 1
            users = self.user_onehot(log)
            L = users.shape[1]
            X[:, start : start + L] = users
            X[:, start + L] = self.affinity(log)[rows, log.item]
            X[:, start + L + 1 :] = users * self.item_feature[log.item][:, None]
        return X

    def prior(self, base_ctr: float, item_precision: float, context_precision: float) -> tuple[np.ndarray, np.ndarray]:
        d = len(self.names)
        mean, precision = np.zeros(d), np.full(d, context_precision)
        mean[: self.n_items] = logit(base_ctr)
        precision[: self.n_items] = item_precision
        precision[self.n_items : self.n_items + POSITIONS - 1] = POSITION_PRECISION
        return mean, precision


def heldout_loglik(X: np.ndarray, y: np.ndarray, prior: tuple[np.ndarray, np.ndarray], folds: int = FOLDS) -> float:
    """Sum over contiguous (time) folds of the log-likelihood of each fold under the MAP fit on the rest."""
    total = 0.0
    for part in np.array_split(np.arange(len(y)), folds):
        rest = np.ones(len(y), dtype=bool)
        rest[part] = False
        w = fit(X[rest], y[rest], prior_mean=prior[0], prior_precision=prior[1]).mean
        z = X[part] @ w
        total -= float(np.logaddexp(0.0, np.where(y[part] > 0, -z, z)).sum())
    return total


@dataclass(frozen=True)
class ClickFit:
    """A fitted click model with what chose its prior."""

    encoder: Encoder
    fit: Fit
    base_ctr: float
    item_precision: float
    context_precision: float | None
    cv: dict[float, float]  # held-out log-likelihood of each precision tried

    @property
    def n_features(self) -> int:
        return len(self.encoder.names)

    def predict(self, log: ObdLog) -> np.ndarray:
        """Predicted click probability of each logged (record, item, position), with the posterior mean."""
        return sigmoid(self.encoder.design(log) @ self.fit.mean)


def fit_click_model(
    train: ObdLog, *, contextual: bool, item_precision: float | None = None, precisions=PRECISIONS
) -> ClickFit:
    """The item-only model (``contextual=False``, its item precision chosen by cross-validation) or the contextual
    one (item precision given: the item-only model's; context precision chosen by cross-validation)."""
    enc = Encoder.from_log(train, contextual=contextual)
    X, y = enc.design(train), train.click.astype(np.float64)
    base = max(float(y.mean()), 1e-4)
    if contextual:
        if item_precision is None:
            raise ValueError("the contextual model takes the item-only model's item precision")
        cv = {float(p): heldout_loglik(X, y, enc.prior(base, item_precision, p)) for p in precisions}
        item_p, ctx_p = item_precision, max(cv, key=cv.get)
    else:
        cv = {float(p): heldout_loglik(X, y, enc.prior(base, p, 1.0)) for p in precisions}
        item_p, ctx_p = max(cv, key=cv.get), None
    mean, precision = enc.prior(base, item_p, 1.0 if ctx_p is None else ctx_p)
    return ClickFit(enc, fit(X, y, prior_mean=mean, prior_precision=precision), base, item_p, ctx_p, cv)


def thompson_probabilities(
    model: ClickFit, log: ObdLog, rng: np.random.Generator, *, draws: int, epsilon: float, chunk: int = 2_000_000
) -> np.ndarray:
    """(records, positions, items): the probability that Thompson sampling over ``model``'s posterior puts each
    item at each position for each record's context, mixed with the serving policy's uniform exploration
    (``epsilon``) as ``policy.slate_probabilities`` does. Monte Carlo over ``draws`` weight draws, shared by
    all records; records with the same context are computed once."""
    enc, items = model.encoder, model.encoder.n_items
    if items < POSITIONS:
        raise ValueError(f"{items} item(s) for {POSITIONS} positions")
    chol = np.linalg.cholesky(model.fit.cov + 1e-12 * np.eye(len(model.fit.mean)))
    W = model.fit.mean + rng.standard_normal((draws, len(model.fit.mean))) @ chol.T
    w_item = W[:, :items]  # the position and user main effects add the same to every item: they never reorder
    if enc.contextual:
        L = len(enc.levels)
        start = items + POSITIONS - 1
        w_aff, w_int = W[:, start + L], W[:, start + L + 1 :]
        context = np.hstack([enc.user_onehot(log), enc.affinity(log)])
        unique, inverse = np.unique(context, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
    else:
        unique, inverse = np.zeros((1, 0)), np.zeros(len(log), dtype=np.int64)
    counts = np.zeros((len(unique), POSITIONS, items))
    step = max(1, chunk // (draws * items))
    for lo in range(0, len(unique), step):
        c = unique[lo : lo + step]
        score = np.broadcast_to(w_item, (len(c), draws, items)).copy()
        if enc.contextual:
            users, aff = c[:, :L], c[:, L:]
            score += aff[:, None, :] * w_aff[None, :, None]
            score += (users @ w_int.T)[:, :, None] * enc.item_feature[None, None, :]
        top = np.argpartition(-score, np.arange(POSITIONS), axis=2)[:, :, :POSITIONS]  # (contexts, draws, positions)
        flat = (np.arange(len(c))[:, None, None] * POSITIONS + np.arange(POSITIONS)) * items + top
        counts[lo : lo + len(c)] = np.bincount(flat.ravel(), minlength=len(c) * POSITIONS * items).reshape(
            len(c), POSITIONS, items
        )
    probs = (1.0 - epsilon) * counts / draws + epsilon / items
    return probs[inverse]


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def auc(y: np.ndarray, p: np.ndarray) -> float | None:
    """The probability that a clicked record scores above an unclicked one (ties count half)."""
    pos, n = int(y.sum()), len(y)
    if pos == 0 or pos == n:
        return None
    order = np.argsort(p, kind="mergesort")
    ranks = np.empty(n)
    sorted_p = p[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_p, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[y > 0].sum() - pos * (pos + 1) / 2.0) / (pos * (n - pos)))


def compare_predictions(
    y: np.ndarray, p_context: np.ndarray, p_item: np.ndarray, *, n_bootstrap: int, seed: int, alpha: float = 0.05
) -> dict:
    """Held-out log-loss and AUC of both models, and paired bootstrap intervals of their differences
    (contextual minus item-only)."""
    rng = np.random.default_rng(seed)
    diff = {"log_loss": [], "auc": []}
    for _ in range(n_bootstrap):
        idx = rng.integers(0, len(y), size=len(y))
        diff["log_loss"].append(log_loss(y[idx], p_context[idx]) - log_loss(y[idx], p_item[idx]))
        a, b = auc(y[idx], p_context[idx]), auc(y[idx], p_item[idx])
        if a is not None and b is not None:
            diff["auc"].append(a - b)
    out = {
        "records": len(y),
        "clicks": int(y.sum()),
        "contextual": {"log_loss": log_loss(y, p_context), "auc": auc(y, p_context)},
        "item_only": {"log_loss": log_loss(y, p_item), "auc": auc(y, p_item)},
    }
    for name, values in diff.items():
        point_c, point_i = out["contextual"][name], out["item_only"][name]
        lo, hi = np.quantile(values, [alpha / 2, 1 - alpha / 2]) if values else (None, None)
        out[f"{name}_difference"] = {
            "value": None if point_c is None or point_i is None else point_c - point_i,
            "ci_low": None if lo is None else float(lo),
            "ci_high": None if hi is None else float(hi),
        }
    return out
