"""The campaign dashboard's rows: each campaign's delivery today and over its run against plan, its results, its
last days' impressions and its delivery diagnosis, for a page of campaigns in a fixed number of queries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from django.utils import timezone

from adengine import clock
from adengine.models import Campaign
from adengine.selectors.diagnosis import Diagnosis, diagnose
from adengine.selectors.performance import Figures, figures

SPARK_DAYS = 14


@dataclass
class DashboardRow:
    """One campaign on the dashboard."""

    campaign: Campaign
    diagnosis: Diagnosis
    today: Figures  # the shop's day so far (roll-up plus the live tail since it)
    total: Figures  # its whole run
    days: list[dt.date] = field(default_factory=list)
    impressions_by_day: list[int] = field(default_factory=list)  # one per day, oldest first
    plan_total: Decimal | None = None  # the total budget's share of its schedule gone by now (both dates set)

    @property
    def spent_today(self) -> Decimal:
        """Charged today, as the daily budget counts it."""
        return self.diagnosis.spent_today


def period_plan(campaign: Campaign, now: dt.datetime) -> Decimal | None:
    """What an even spend of the total budget over the schedule would have spent by ``now`` (None when the
    schedule has no end: there is no plan to be behind or ahead of)."""
    start, end = campaign.starts_at or campaign.created_at, campaign.ends_at
    if start is None or end is None or end <= start:
        return None
    share = min(1.0, max(0.0, (now - start).total_seconds() / (end - start).total_seconds()))
    return (campaign.total_budget * Decimal(str(share))).quantize(Decimal("0.01"))


def dashboard_rows(campaigns: Iterable[Campaign], *, now: dt.datetime | None = None) -> list[DashboardRow]:
    """The rows of these campaigns, in their order (three figures queries and the diagnosis's, for any number)."""
    campaigns = list(campaigns)
    if not campaigns:
        return []
    now = now or timezone.now()
    ids = [c.pk for c in campaigns]
    today = clock.today(now)
    days = [today - dt.timedelta(days=n) for n in range(SPARK_DAYS - 1, -1, -1)]
    diagnoses = diagnose(campaigns, now=now)
    so_far = figures(ids, by=("campaign",), since=clock.midnight(now))
    total = figures(ids, by=("campaign",))
    by_day = figures(ids, by=("campaign", "day"), since=clock.day_start(days[0]))
    return [
        DashboardRow(
            campaign=c,
            diagnosis=diagnoses[c.pk],
            today=so_far.get((c.pk,), Figures()),
            total=total.get((c.pk,), Figures()),
            days=days,
            impressions_by_day=[by_day.get((c.pk, d), Figures()).impressions for d in days],
            plan_total=period_plan(c, now),
        )
        for c in campaigns
    ]
