"""Experiment results per arm, with a two-proportion z-test of each arm's CTR against the first arm."""

from __future__ import annotations

import math

from adengine.models import Experiment
from adengine.selectors.performance import figures


def z_test(clicks_a: int, n_a: int, clicks_b: int, n_b: int) -> tuple[float | None, float | None]:
    """(z, two-sided p-value) for a difference of two click rates (pooled normal approximation)."""
    if min(n_a, n_b) == 0:
        return None, None
    pooled = (clicks_a + clicks_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if se == 0:
        return None, None
    z = (clicks_b / n_b - clicks_a / n_a) / se
    return z, math.erfc(abs(z) / math.sqrt(2))


def experiment_report(experiment: Experiment) -> list[dict]:
    """Per arm (and holdout): impressions, clicks, CTR, conversions, conversion rate; z and p against the
    first arm's CTR, and whether the difference is significant at 5 %."""
    prefix = f"{experiment.pk}:"
    by_arm = {arm.removeprefix(prefix): f for (arm,), f in figures(None, by=("arm",)).items() if arm.startswith(prefix)}
    impressions = {a: f.impressions for a, f in by_arm.items()}
    clicks = {a: f.clicks for a, f in by_arm.items()}
    conversions = {a: f.conversions for a, f in by_arm.items()}
    names = [a["name"] for a in experiment.arms] + (["holdout"] if experiment.holdout > 0 else [])
    control = names[0]
    rows = []
    for name in names:
        n, c, cv = impressions.get(name, 0), clicks.get(name, 0), conversions.get(name, 0)
        z, p = (None, None) if name == control else z_test(clicks.get(control, 0), impressions.get(control, 0), c, n)
        rows.append(
            {
                "arm": name,
                "impressions": n,
                "clicks": c,
                "ctr": c / n if n else None,
                "conversions": cv,
                "conversion_rate": cv / c if c else None,
                "z": z,
                "p_value": p,
                "significant": p is not None and p < 0.05,
            }
        )
    return rows
