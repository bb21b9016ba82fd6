"""Off-policy evaluation: how a new strategy would have done, estimated from logged decisions.

Works on any log of (context, action, position, reward, propensity) records -- adengine's impression log
or another in the same form (the Open Bandit Dataset, for one). The estimators:

- IPW (inverse propensity weighting): mean of reward x pi(a|x) / p_log(a|x); unbiased when the logged
  propensities are right and never zero where the new policy acts.
- SNIPW (self-normalised IPW): the same weighted rewards divided by the mean weight; a little biased,
  much less variance.
- DM (direct method): a reward model's predictions averaged over the new policy's action distribution;
  no propensities needed, biased by the model's errors.
- DR (doubly robust): DM plus the IPW-weighted residuals of the reward model; unbiased when either the
  propensities or the reward model are right.

Each comes with a bootstrap 95 % confidence interval (resampling the logged records).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

ESTIMATORS = ("ipw", "snipw", "dm", "dr")


class LogError(ValueError):
    """The log cannot be evaluated; the message names the problem."""


@dataclass(frozen=True)
class BanditLog:
    """Logged decisions: for record i, action ``action[i]`` was shown at ``position[i]`` with probability
    ``pscore[i]`` under the logging policy and earned ``reward[i]`` (a click: 0/1)."""

    action: np.ndarray
    reward: np.ndarray
    pscore: np.ndarray
    position: np.ndarray
    n_actions: int
    context: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.action)
        if n == 0:
            raise LogError("the log is empty: nothing to evaluate")
        for name in ("reward", "pscore", "position"):
            if len(getattr(self, name)) != n:
                raise LogError(f"{name} has {len(getattr(self, name))} records, action has {n}")
        if self.context is not None and len(self.context) != n:
            raise LogError(f"context has {len(self.context)} records, action has {n}")
        bad = np.flatnonzero(~(self.pscore > 0) | ~np.isfinite(self.pscore) | (self.pscore > 1))
        if len(bad):
            raise LogError(
                f"{len(bad)} record(s) have a propensity that is not in (0, 1] (first: record {bad[0]}, "
                f"value {self.pscore[bad[0]]!r}); inverse propensity weighting needs every logged "
                "choice's probability"
            )
        if self.action.min() < 0 or self.action.max() >= self.n_actions:
            raise LogError(f"actions must be 0..{self.n_actions - 1}")

    def __len__(self) -> int:
        return len(self.action)

    def subset(self, idx: np.ndarray) -> BanditLog:
        return BanditLog(
            action=self.action[idx],
            reward=self.reward[idx],
            pscore=self.pscore[idx],
            position=self.position[idx],
            n_actions=self.n_actions,
            context=None if self.context is None else self.context[idx],
        )


def _taken(policy: np.ndarray, log: BanditLog) -> np.ndarray:
    """pi(logged action | record) from an (n, actions) matrix of the new policy's probabilities."""
    return policy[np.arange(len(log)), log.action]


def _terms(log: BanditLog, policy: np.ndarray, q_hat: np.ndarray | None) -> dict[str, np.ndarray]:
    """Per-record terms whose (ratio of) means are the estimates."""
    w = _taken(policy, log) / log.pscore
    terms = {"w": w, "ipw": w * log.reward}
    if q_hat is not None:
        dm = (policy * q_hat).sum(axis=1)
        terms["dm"] = dm
        terms["dr"] = dm + w * (log.reward - q_hat[np.arange(len(log)), log.action])
    return terms


def _estimate(name: str, terms: dict[str, np.ndarray], idx: np.ndarray | slice = slice(None)) -> float:
    if name == "snipw":
        w = terms["w"][idx]
        return float(terms["ipw"][idx].sum() / w.sum()) if w.sum() > 0 else 0.0
    return float(terms[name][idx].mean())


@dataclass(frozen=True)
class Estimate:
    estimator: str
    value: float
    ci_low: float
    ci_high: float

    def as_dict(self) -> dict:
        return {"estimator": self.estimator, "value": self.value, "ci_low": self.ci_low, "ci_high": self.ci_high}


def evaluate(
    log: BanditLog,
    policy: np.ndarray,
    *,
    q_hat: np.ndarray | None = None,
    reward_model: Callable[[BanditLog], np.ndarray] | None = None,
    estimators: tuple[str, ...] = ESTIMATORS,
    n_bootstrap: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, Estimate]:
    """Estimate the new policy's expected reward per record with each estimator and a bootstrap interval.

    ``policy`` is an (n, actions) matrix: the new policy's probability of each action for each logged
    record (at the record's position). DM and DR need predicted rewards of the same shape: ``q_hat`` fixed
    (a model trained on other data), or ``reward_model``, a function fitted on the log itself -- then it
    is refitted on every bootstrap sample, so the interval includes the model's own uncertainty.
    """
    policy = np.asarray(policy, dtype=np.float64)
    if policy.shape != (len(log), log.n_actions):
        raise LogError(f"policy must be ({len(log)}, {log.n_actions}) probabilities, got {policy.shape}")
    if np.any(policy < -1e-9) or not np.allclose(policy.sum(axis=1), 1.0, atol=1e-6):
        raise LogError("each row of policy must be a probability distribution over the actions")
    unknown = set(estimators) - set(ESTIMATORS)
    if unknown:
        raise LogError(f"unknown estimator(s) {sorted(unknown)}; known: {', '.join(ESTIMATORS)}")
    if q_hat is None and reward_model is None and any(e in ("dm", "dr") for e in estimators):
        raise LogError("the direct method and doubly robust estimators need a reward model (q_hat or reward_model)")

    def q_for(sub: BanditLog, idx) -> np.ndarray | None:
        if reward_model is not None:
            return reward_model(sub)
        return None if q_hat is None else np.asarray(q_hat, dtype=np.float64)[idx]

    everything = np.arange(len(log))
    terms = _terms(log, policy, q_for(log, everything))
    rng = np.random.default_rng(seed)
    boot: dict[str, list[float]] = {name: [] for name in estimators}
    for _ in range(n_bootstrap):
        idx = rng.integers(0, len(log), size=len(log))
        if reward_model is not None:
            sub = log.subset(idx)
            sample = _terms(sub, policy[idx], q_for(sub, idx))
            for name in estimators:
                boot[name].append(_estimate(name, sample))
        else:
            for name in estimators:
                boot[name].append(_estimate(name, terms, idx))
    out = {}
    for name in estimators:
        lo, hi = np.quantile(boot[name], [alpha / 2, 1 - alpha / 2])
        out[name] = Estimate(name, _estimate(name, terms), float(lo), float(hi))
    return out


def fit_reward_model(log: BanditLog, *, prior: float = 1.0) -> np.ndarray:
    """A simple, robust reward model for DM and DR: each action's click rate at each position, shrunk
    towards the overall rate (``prior`` pseudo-records); returns q_hat for every record and action."""
    overall = float(log.reward.mean())
    positions = np.unique(log.position)
    q = np.zeros((len(log), log.n_actions))
    for pos in positions:
        at = log.position == pos
        clicks = np.bincount(log.action[at], weights=log.reward[at], minlength=log.n_actions)
        shown = np.bincount(log.action[at], minlength=log.n_actions)
        rate = (clicks + prior * overall) / (shown + prior)
        q[at] = rate[None, :]
    return q


def compare(
    log: BanditLog,
    policy: np.ndarray,
    baseline: np.ndarray,
    *,
    q_hat: np.ndarray | None = None,
    estimators: tuple[str, ...] = ("ipw", "snipw", "dr"),
    n_bootstrap: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, dict[str, Estimate]]:
    """Two policies on the same log: each estimator's ratio (policy / baseline) and difference, with paired
    bootstrap intervals (both estimated on the same resampled records, so the noise they share cancels)."""
    a, b = (np.asarray(p, dtype=np.float64) for p in (policy, baseline))
    for p in (a, b):
        if p.shape != (len(log), log.n_actions):
            raise LogError(f"policy must be ({len(log)}, {log.n_actions}) probabilities, got {p.shape}")
    if q_hat is None and any(e in ("dm", "dr") for e in estimators):
        raise LogError("the direct method and doubly robust estimators need a reward model (q_hat)")
    ta, tb = _terms(log, a, q_hat), _terms(log, b, q_hat)
    rng = np.random.default_rng(seed)
    boot: dict[str, list[tuple[float, float]]] = {name: [] for name in estimators}
    for _ in range(n_bootstrap):
        idx = rng.integers(0, len(log), size=len(log))
        for name in estimators:
            boot[name].append((_estimate(name, ta, idx), _estimate(name, tb, idx)))
    out = {}
    for name in estimators:
        va, vb = _estimate(name, ta), _estimate(name, tb)
        pairs = np.array(boot[name])
        diff = np.quantile(pairs[:, 0] - pairs[:, 1], [alpha / 2, 1 - alpha / 2])
        ok = pairs[:, 1] > 0
        ratio = np.quantile(pairs[ok, 0] / pairs[ok, 1], [alpha / 2, 1 - alpha / 2]) if ok.any() else (np.nan,) * 2
        out[name] = {
            "ratio": Estimate(name, va / vb if vb > 0 else float("nan"), float(ratio[0]), float(ratio[1])),
            "difference": Estimate(name, va - vb, float(diff[0]), float(diff[1])),
        }
    return out
