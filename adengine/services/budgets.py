"""Charging spend atomically: a campaign never spends beyond its total or daily budget, even under concurrency."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from adengine.models import Campaign, CampaignDay


class _OverDaily(Exception):
    pass


def charge(*, campaign_id: int, amount: Decimal, day: dt.date | None = None) -> bool:
    """Add ``amount`` to the campaign's spend if both budgets allow it; False (nothing charged) otherwise.

    Each budget is checked and charged by one conditional UPDATE: PostgreSQL re-evaluates its WHERE on the
    locked, newest row version, so concurrent charges are serialised per campaign and none passes the limit.
    """
    if amount <= 0:
        return True
    day = day or timezone.localdate()
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
