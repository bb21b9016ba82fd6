"""The serving policy, as pure numpy: priors from audience fit, Thompson-sampled slates, their propensities.

Kept free of Django so that the live decision engine, the offline evaluation and the simulation run the
very same code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

POLICY_NAME = "thompson-v1"  # Beta posterior per asset x a fixed relevance factor (the policy before the click model)
CONTEXTUAL = "contextual-v1"  # the click model's posterior (``click_model``) with each asset's Beta posterior


class BetaSampler:
    """Each arm's CTR drawn from its Beta posterior (no context)."""

    def __init__(self, alpha: np.ndarray, beta: np.ndarray) -> None:
        self.alpha = np.asarray(alpha, dtype=np.float64)
        self.beta = np.asarray(beta, dtype=np.float64)

    def __len__(self) -> int:
        return len(self.alpha)

    def draw(self, rng: np.random.Generator, m: int) -> np.ndarray:
        """(m, arms) sampled click rates."""
        return rng.beta(self.alpha, self.beta, size=(m, len(self.alpha)))


def prior_from_scores(
    scores: np.ndarray, *, base_ctr: float, strength: float, spread: float, human: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Beta(alpha, beta) priors for one campaign's assets from their audience-fit scores.

    Scores are ranked within the campaign (their scale depends on the encoder): the best-fitting asset
    starts at ``base_ctr * (1 + spread)``, the worst at ``base_ctr * (1 - spread)``, assets without a
    score at ``base_ctr``; ``strength`` is the prior's weight in impressions. With ``human`` (per asset: written
    by a person), a generated asset starts no higher than the best human-written one: it earns traffic through
    its clicks, never through its audience-fit score alone.
    """
    scores = np.asarray(scores, dtype=np.float64)
    rel = np.full(scores.shape, 0.5)
    known = ~np.isnan(scores)
    if known.sum() > 1:
        lo, hi = scores[known].min(), scores[known].max()
        if hi > lo:
            rel[known] = (scores[known] - lo) / (hi - lo)
    mean = np.clip(base_ctr * (1.0 + spread * (2.0 * rel - 1.0)), 1e-4, 0.5)
    if human is not None:
        human = np.asarray(human, dtype=bool)
        if human.any() and (~human).any():
            mean = np.where(human, mean, np.minimum(mean, mean[human].max()))
    return mean * strength, (1.0 - mean) * strength


def relevance_factor(relevance: np.ndarray, weight: float) -> np.ndarray:
    """How relevance (0..1) scales an asset's click rate into the predicted CTR for this shopper and page."""
    return np.exp(weight * (np.asarray(relevance, dtype=np.float64) - 0.5))


@dataclass(frozen=True)
class Slate:
    """The chosen arms in order, with the probability that each was put in its position."""

    arms: np.ndarray  # indices into the candidate arms, in slate order
    propensities: np.ndarray  # P(this arm at this position) under the policy
    sampled_ctr: np.ndarray  # the CTR each chosen arm was ranked with
    values: np.ndarray  # the value each chosen arm was ranked with
    explored: bool  # the uniform exploration branch chose it


def _group_best(values: np.ndarray, starts: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row and group (arms sorted by group): the best value and the first arm that has it."""
    best_val = np.maximum.reduceat(values, starts, axis=1)
    is_best = values == np.repeat(best_val, sizes, axis=1)
    arm_ids = np.where(is_best, np.arange(values.shape[1]), values.shape[1])
    return best_val, np.minimum.reduceat(arm_ids, starts, axis=1)


def _groups(group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if np.any(group[1:] < group[:-1]):
        raise ValueError("arms must be sorted by group")
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    sizes = np.r_[starts[1:], len(group)] - starts
    return starts, sizes


def _slates(theta: np.ndarray, weight: np.ndarray, starts: np.ndarray, sizes: np.ndarray, n: int) -> np.ndarray:
    """The Thompson slate of each row of sampled CTRs: (rows, n) arm indices."""
    values = theta * weight
    best_val, best_arm = _group_best(values, starts, sizes)
    order = np.argsort(-best_val, axis=1, kind="stable")[:, :n]
    return best_arm[np.arange(len(theta))[:, None], order]


def _sampler(sampler, alpha, beta):
    return sampler if sampler is not None else BetaSampler(alpha, beta)


def sample_slate(
    rng: np.random.Generator,
    *,
    alpha: np.ndarray | None = None,
    beta: np.ndarray | None = None,
    weight: np.ndarray,
    sampler=None,
    group: np.ndarray,
    n: int,
    epsilon: float,
) -> Slate:
    """Choose up to ``n`` arms, at most one per group (campaign), by Thompson sampling of value = CTR x weight.

    Each arm's CTR is drawn once from the ``sampler`` (default: its Beta(alpha, beta) posterior) and the slate
    is the top arms by sampled value. With probability ``epsilon`` the slate is instead uniform: a random order
    of groups and a random arm in each. Arms must be sorted by group. The propensities are left empty: see
    ``propensities``.
    """
    return sample_slates(
        rng, sampler=_sampler(sampler, alpha, beta), weight=weight, group=group, n=n, epsilon=epsilon, m=1
    )[0]


def sample_slates(
    rng: np.random.Generator, *, sampler, weight: np.ndarray, group: np.ndarray, n: int, epsilon: float, m: int
) -> list[Slate]:
    """``m`` independent slates of ``sample_slate`` (the same arms), drawn in one vectorised pass: the decisions
    that compete over the same arms (a page's new visitors, say) take one each. ``m = 1`` draws the very values
    ``sample_slate`` does from the same generator state."""
    weight = np.asarray(weight, dtype=np.float64)
    group = np.asarray(group)
    if len(sampler) == 0 or n <= 0:
        empty = np.empty(0)
        return [Slate(np.empty(0, dtype=np.int64), empty, empty, empty, False) for _ in range(m)]
    starts, sizes = _groups(group)
    n = min(n, len(starts))
    theta = sampler.draw(rng, m)
    explored = rng.random(m) < epsilon
    best = _slates(theta, weight, starts, sizes, n)
    slates = []
    for row in range(m):
        if explored[row]:
            groups = rng.permutation(len(starts))[:n]
            arms = np.array([starts[g] + rng.integers(sizes[g]) for g in groups], dtype=np.int64)
        else:
            arms = best[row]
        ctr = theta[row, arms]
        slates.append(Slate(arms, np.full(len(arms), np.nan), ctr, ctr * weight[arms], bool(explored[row])))
    return slates


def slate_probabilities(
    rng: np.random.Generator,
    *,
    alpha: np.ndarray | None = None,
    beta: np.ndarray | None = None,
    weight: np.ndarray,
    sampler=None,
    group: np.ndarray,
    n: int,
    epsilon: float,
    draws: int,
) -> np.ndarray:
    """P(arm at position k) for every arm and position under ``sample_slate``: an (n, arms) matrix.

    The mixture (1 - epsilon) x P_thompson + epsilon x P_uniform, P_thompson estimated from ``draws``
    independent Thompson slates and P_uniform = 1 / (groups x arms in the group), so never zero.
    """
    sampler = _sampler(sampler, alpha, beta)
    weight = np.asarray(weight, dtype=np.float64)
    starts, sizes = _groups(np.asarray(group))
    n = min(n, len(starts))
    arms = len(sampler)
    counts = np.zeros((n, arms))
    done = 0
    while done < draws:
        m = min(2000, draws - done)
        chosen = _slates(sampler.draw(rng, m), weight, starts, sizes, n)
        for k in range(n):
            counts[k] += np.bincount(chosen[:, k], minlength=arms)
        done += m
    uniform = uniform_probability(starts, sizes, np.arange(arms))
    return (1.0 - epsilon) * counts / draws + epsilon * uniform[None, :]


def propensities(
    rng: np.random.Generator,
    *,
    alpha: np.ndarray | None = None,
    beta: np.ndarray | None = None,
    weight: np.ndarray,
    sampler=None,
    group: np.ndarray,
    arms: np.ndarray,
    epsilon: float,
    draws: int,
) -> np.ndarray:
    """P(arm at its position) under ``sample_slate`` for a chosen slate ``arms`` (see ``slate_probabilities``)."""
    arms = np.asarray(arms, dtype=np.int64)
    if len(arms) == 0:
        return np.empty(0)
    probs = slate_probabilities(
        rng,
        sampler=_sampler(sampler, alpha, beta),
        weight=weight,
        group=group,
        n=len(arms),
        epsilon=epsilon,
        draws=draws,
    )
    return probs[np.arange(len(arms)), arms]


def uniform_probability(starts: np.ndarray, sizes: np.ndarray, arms: np.ndarray) -> np.ndarray:
    """P(arm at a given position) under the uniform exploration: 1 / (groups x arms in the arm's group)."""
    arm_group = np.searchsorted(starts, arms, side="right") - 1
    return 1.0 / (len(starts) * sizes[arm_group])


def thompson_slate(
    rng: np.random.Generator,
    *,
    alpha: np.ndarray,
    beta: np.ndarray,
    weight: np.ndarray,
    group: np.ndarray,
    n: int,
    epsilon: float,
    draws: int,
) -> Slate:
    """``sample_slate`` with its ``propensities`` filled in (estimated from ``draws`` extra draws)."""
    slate = sample_slate(rng, alpha=alpha, beta=beta, weight=weight, group=group, n=n, epsilon=epsilon)
    p = propensities(
        rng, alpha=alpha, beta=beta, weight=weight, group=group, arms=slate.arms, epsilon=epsilon, draws=draws
    )
    return Slate(slate.arms, p, slate.sampled_ctr, slate.values, slate.explored)
