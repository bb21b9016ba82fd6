"""Campaign reports from the hourly statistics: totals by day, placement or asset, with unique reach."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from django.db.models import Count, Sum
from django.db.models.functions import TruncDate

from adengine.models import Campaign, HourlyStats, Impression

BREAKDOWNS = {"day": "day", "placement": "placement__key", "creative": "creative__text"}
METRICS = ("impressions", "views", "clicks", "ctr", "conversions", "conversion_rate", "spend", "revenue", "roas",
           "ecpm", "reach")  # fmt: skip


class Rates:
    """CTR, conversion rate and ROAS of anything with impressions, clicks, conversions, spend and revenue."""

    impressions: float
    clicks: float
    conversions: float
    spend: float
    revenue: float

    @property
    def ctr(self) -> float | None:
        return self.clicks / self.impressions if self.impressions else None

    @property
    def conversion_rate(self) -> float | None:
        return self.conversions / self.clicks if self.clicks else None

    @property
    def roas(self) -> float | None:
        return self.revenue / self.spend if self.spend else None


@dataclass
class ReportRow(Rates):
    key: str
    impressions: float
    views: float
    clicks: float
    conversions: float
    spend: float
    revenue: float
    reach: float

    @property
    def ecpm(self) -> float | None:
        return 1000.0 * self.spend / self.impressions if self.impressions else None

    def as_dict(self) -> dict:
        return {"key": self.key, **{m: getattr(self, m) for m in METRICS}}


def campaign_report(
    campaign: Campaign, *, by: str = "day", since: dt.date | None = None, until: dt.date | None = None
) -> list[ReportRow]:
    """One row per day, placement or headline (as ``by`` says), from the strategy update's hourly roll-up;
    reach (distinct shoppers) is counted on the impression log."""
    if by not in BREAKDOWNS:
        raise ValueError(f"by must be one of {', '.join(BREAKDOWNS)}")
    stats = HourlyStats.objects.filter(campaign=campaign)
    imps = Impression.objects.filter(campaign=campaign)
    if since:
        stats = stats.filter(hour__date__gte=since)
        imps = imps.filter(served_at__date__gte=since)
    if until:
        stats = stats.filter(hour__date__lt=until)
        imps = imps.filter(served_at__date__lt=until)
    if by == "day":
        stats = stats.annotate(day=TruncDate("hour"))
        imps = imps.annotate(day=TruncDate("served_at"))
    field = BREAKDOWNS[by]
    imp_field = {"day": "day", "placement": "placement__key", "creative": "creative__text"}[by]
    reach = dict(imps.values(imp_field).annotate(n=Count("shopper", distinct=True)).values_list(imp_field, "n"))
    rows = []
    for r in (
        stats.values(field)
        .annotate(
            i=Sum("impressions"),
            v=Sum("views"),
            c=Sum("clicks"),
            cv=Sum("conversions"),
            s=Sum("spend"),
            rv=Sum("revenue"),
        )
        .order_by(field)
    ):
        key = r[field]
        rows.append(
            ReportRow(
                key=key.isoformat() if hasattr(key, "isoformat") else str(key or "(none)"),
                impressions=r["i"] or 0,
                views=r["v"] or 0,
                clicks=r["c"] or 0,
                conversions=r["cv"] or 0,
                spend=float(r["s"] or 0),
                revenue=float(r["rv"] or 0),
                reach=reach.get(key, 0),
            )
        )
    return rows


def with_laplace_noise(rows: list[ReportRow], *, epsilon: float, seed: int | None = None) -> list[ReportRow]:
    """The rows with Laplace noise of scale 1/epsilon added to every count (and revenue/spend scaled by each
    row's mean value per event), rounded and kept non-negative; ratios follow from the noisy figures.

    Calibrated for one event changing one count by one (event-level differential privacy, per release)."""
    if epsilon <= 0:
        raise ValueError("epsilon must be positive")
    rng = np.random.default_rng(seed)
    scale = 1.0 / epsilon

    def noisy(x: float) -> float:
        return float(max(0, round(x + rng.laplace(0.0, scale))))

    out = []
    for r in rows:
        clicks = noisy(r.clicks)
        conversions = noisy(r.conversions)
        out.append(
            ReportRow(
                key=r.key,
                impressions=noisy(r.impressions),
                views=noisy(r.views),
                clicks=clicks,
                conversions=conversions,
                spend=round(r.spend * (clicks / r.clicks), 2) if r.clicks else r.spend,
                revenue=round(r.revenue * (conversions / r.conversions), 2) if r.conversions else 0.0,
                reach=noisy(r.reach),
            )
        )
    return out
