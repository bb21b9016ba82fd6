"""How the serving policy learns: Beta posteriors of click rates from impressions and clicks.

The live strategy update and the offline evaluation both call these, so what is evaluated offline is
what would run.
"""

from __future__ import annotations

import numpy as np


def posteriors(
    prior_alpha: np.ndarray, prior_beta: np.ndarray, impressions: np.ndarray, clicks: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Beta(alpha, beta) posteriors of each arm's click rate: the prior plus clicks and non-clicks."""
    impressions = np.asarray(impressions, dtype=np.float64)
    clicks = np.asarray(clicks, dtype=np.float64)
    if np.any(clicks > impressions) or np.any(clicks < 0):
        raise ValueError("clicks must be between 0 and the impressions of each arm")
    return np.asarray(prior_alpha, np.float64) + clicks, np.asarray(prior_beta, np.float64) + impressions - clicks


def flat_prior(n_arms: int, *, base_ctr: float, strength: float) -> tuple[np.ndarray, np.ndarray]:
    """The same Beta prior for every arm: mean ``base_ctr``, weight ``strength`` impressions."""
    return np.full(n_arms, base_ctr * strength), np.full(n_arms, (1.0 - base_ctr) * strength)


def slate_probabilities(
    rng: np.random.Generator,
    *,
    alpha: np.ndarray,
    beta: np.ndarray,
    weight: np.ndarray,
    group: np.ndarray,
    n: int,
    epsilon: float,
    draws: int,
) -> np.ndarray:
    """P(arm at position k) for every arm and position under the serving policy: an (n, arms) matrix.

    Estimated from ``draws`` Thompson slates (``adengine.serving.policy``), mixed with the uniform
    exploration the policy applies with probability ``epsilon``.
    """
    from .policy import _groups, _slates, uniform_probability

    alpha, beta, weight = (np.asarray(x, dtype=np.float64) for x in (alpha, beta, weight))
    starts, sizes = _groups(np.asarray(group))
    n = min(n, len(starts))
    out = np.zeros((n, len(alpha)))
    done = 0
    while done < draws:
        m = min(2000, draws - done)
        chosen = _slates(rng.beta(alpha, beta, size=(m, len(alpha))), weight, starts, sizes, n)
        for k in range(n):
            out[k] += np.bincount(chosen[:, k], minlength=len(alpha))
        done += m
    out /= draws
    return (1.0 - epsilon) * out + epsilon * uniform_probability(starts, sizes, np.arange(len(alpha)))[None, :]
