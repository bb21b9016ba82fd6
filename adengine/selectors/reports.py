"""Campaign reports from the hourly statistics: totals by day, placement or asset, with unique reach."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
from django.db.models import Count
from django.db.models.functions import TruncDate

from adengine.clock import day_start
from adengine.models import Campaign, Creative, Impression, Placement
from adengine.selectors.performance import Figures, figures

BREAKDOWNS = {"day": "day", "placement": "placement_id", "creative": "creative_id"}
METRICS = ("impressions", "views", "clicks", "ctr", "conversions", "conversion_rate", "spend", "revenue", "roas",
           "ecpm", "reach")  # fmt: skip


@dataclass
class ReportRow(Figures):
    """One line of a report: what it is about (a day, a placement, a headline), its figures and unique reach."""

    key: str = ""
    reach: int = 0

    def as_dict(self) -> dict:
        return {"key": self.key, **{m: getattr(self, m) for m in METRICS}}


def campaign_report(
    campaign: Campaign, *, by: str = "day", since: dt.date | None = None, until: dt.date | None = None
) -> list[ReportRow]:
    """One row per day, placement or headline (as ``by`` says) of the shop's days from ``since`` to before
    ``until``, from ``selectors.performance`` (the hourly roll-up and the live tail, as every other view of
    performance); reach (distinct shoppers) is counted on the impression log."""
    if by not in BREAKDOWNS:
        raise ValueError(f"by must be one of {', '.join(BREAKDOWNS)}")
    start, end = (day_start(d) if d else None for d in (since, until))
    found = figures([campaign.pk], by=(by,), since=start, until=end)
    imps = Impression.objects.filter(campaign=campaign)
    if start:
        imps = imps.filter(served_at__gte=start)
    if end:
        imps = imps.filter(served_at__lt=end)
    if by == "day":
        imps = imps.annotate(day=TruncDate("served_at"))
    field = BREAKDOWNS[by]
    reach = dict(imps.values(field).annotate(n=Count("shopper", distinct=True)).values_list(field, "n"))
    names: dict = {}
    if by == "placement":
        names = dict(Placement.objects.filter(pk__in=[k for (k,) in found]).values_list("pk", "key"))
    elif by == "creative":
        names = dict(Creative.objects.filter(pk__in=[k for (k,) in found]).values_list("pk", "text"))
    rows = []
    for (key,), f in found.items():
        label = key.isoformat() if by == "day" else str(names.get(key) or "(none)")
        rows.append(ReportRow(**vars(f), key=label, reach=reach.get(key, 0)))
    return sorted(rows, key=lambda r: r.key)


def with_laplace_noise(rows: list[ReportRow], *, epsilon: float, seed: int | None = None) -> list[ReportRow]:
    """The rows with Laplace noise of scale 1/epsilon added to every count (and revenue/spend scaled by each
    row's mean value per event), rounded and kept non-negative; ratios follow from the noisy figures.

    Calibrated for one event changing one count by one (event-level differential privacy, per release)."""
    if epsilon <= 0:
        raise ValueError("epsilon must be positive")
    rng = np.random.default_rng(seed)
    scale = 1.0 / epsilon

    def noisy(x: float, most: float | None = None) -> int:
        value = max(0, round(x + rng.laplace(0.0, scale)))
        return int(value if most is None else min(value, most))

    def scaled(money: Decimal, factor: float) -> Decimal:
        return Decimal(str(round(float(money) * factor, 2)))

    out = []
    for r in rows:
        # post-processing keeps the privacy guarantee: no row says more clicks than impressions, or less than 0
        impressions = noisy(r.impressions)
        clicks = noisy(r.clicks, impressions)
        conversions = noisy(r.conversions, clicks)
        out.append(
            ReportRow(
                key=r.key,
                impressions=impressions,
                views=noisy(r.views, impressions),
                clicks=clicks,
                conversions=conversions,
                spend=scaled(r.spend, clicks / r.clicks) if r.clicks else r.spend,
                revenue=scaled(r.revenue, conversions / r.conversions) if r.conversions else Decimal(0),
                reach=noisy(r.reach, impressions),
            )
        )
    return out


def noise_note(epsilon: float) -> str:
    """What a noisy export says about itself: its epsilon and the post-processing of ``with_laplace_noise``."""
    return (
        f"Differentially private export: Laplace noise of scale 1/epsilon added to every count, epsilon = {epsilon:g} "
        "per count of each row (one event changes one count by one); each download is a new release that spends "
        "epsilon again. Post-processed (which keeps the guarantee): counts rounded to whole numbers, none below 0, "
        "views, clicks and reach never above impressions, conversions never above clicks; spend scaled by noisy over "
        "true clicks (as is where there were none), revenue by noisy over true conversions (0 where there were "
        "none); rates computed from the noisy counts."
    )
