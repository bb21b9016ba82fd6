"""The shop's day: midnight, the share of the day gone, a date's bounds, all in the shop's time zone (TIME_ZONE).

Budgets, pacing, frequency caps and reports all speak of "today"; they ask here, so they agree.
"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone


def midnight(now: dt.datetime | None = None) -> dt.datetime:
    """The start of the shop's day that contains ``now`` (an aware datetime)."""
    local = timezone.localtime(now)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def day_share(now: dt.datetime | None = None) -> float:
    """How much of the shop's day has gone by ``now``: 0.0 at midnight, just under 1.0 before the next."""
    local = timezone.localtime(now)
    return (local - midnight(local)).total_seconds() / 86400.0


def day_start(day: dt.date) -> dt.datetime:
    """The aware start (midnight, shop time) of a calendar day."""
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def today(now: dt.datetime | None = None) -> dt.date:
    """The shop's date at ``now``."""
    return timezone.localtime(now).date()
