"""How the serving policy learns: Beta posteriors of click rates from impressions and clicks.

The live strategy update and the offline evaluation both call these (and the policy's
``slate_probabilities``), so what is evaluated offline is what would run.
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
