"""Charging spend atomically: a campaign never spends beyond its total or daily budget, even under concurrency."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db import transaction
from django.db.models import F

from adengine import clock
from adengine.models import Campaign, CampaignDay


def unit_price(*, pricing: str, bid: Decimal) -> Decimal:
    """What one billable event of a campaign costs: a click (CPC) or a view (CPM / 1000)."""
    return bid if pricing == Campaign.Pricing.CPC else bid / Decimal(1000)


def daily_plan(daily_budget, now: dt.datetime | None = None):
    """What a daily budget may have spent by ``now``: its share of the shop's day gone plus ``PACING_SLACK``
    (so a campaign is never starved early in the day), at most the whole budget. Works on a number or a numpy
    array; serving refuses a campaign ahead of it, and the strategy slows one down that is."""
    from adengine.conf import settings as ad_settings

    return daily_budget * min(1.0, clock.day_share(now) + float(ad_settings.PACING_SLACK))


class _OverDaily(Exception):
    pass


def charge(*, campaign_id: int, amount: Decimal, day: dt.date | None = None) -> bool:
    """Add ``amount`` to the campaign's spend if both budgets allow it; False (nothing charged) otherwise.

    Each budget is checked and charged by one conditional UPDATE: PostgreSQL re-evaluates its WHERE on the
    locked, newest row version, so concurrent charges are serialised per campaign and none passes the limit.
    """
    if amount <= 0:
        return True
    day = day or clock.today()
    try:
        with transaction.atomic():
            charged = Campaign.objects.filter(pk=campaign_id, spent__lte=F("total_budget") - amount).update(
                spent=F("spent") + amount
            )
            if not charged:
                return False
            daily = Campaign.objects.filter(pk=campaign_id).values_list("daily_budget", flat=True).first()
            CampaignDay.objects.bulk_create([CampaignDay(campaign_id=campaign_id, day=day)], ignore_conflicts=True)
            rows = CampaignDay.objects.filter(campaign_id=campaign_id, day=day)
            if daily is not None:
                rows = rows.filter(spent__lte=Decimal(daily) - amount)
            if not rows.update(spent=F("spent") + amount):
                raise _OverDaily  # rolls back the total's charge too
    except _OverDaily:
        return False
    return True
