"""Orders credited to ad clicks: the shopper's last counted click within the attribution window."""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from adengine.adapters import get_adapter
from adengine.conf import settings as ad_settings
from adengine.models import AdEvent, Campaign, Conversion, DailyStats, HourlyStats, Shopper, StrategyState

log = logging.getLogger(__name__)


def last_click(*, shopper: Shopper, before: dt.datetime) -> AdEvent | None:
    """The shopper's newest counted click in the window before ``before``."""
    window = dt.timedelta(days=float(ad_settings.ATTRIBUTION_WINDOW_DAYS))
    return (
        AdEvent.objects.select_related("impression")
        .filter(
            kind=AdEvent.Kind.CLICK,
            status__in=AdEvent.COUNTED,
            impression__shopper=shopper,
            # joined on the partition key too: each click's impression is looked up in its own day's partition
            impression__served_at=F("impression_served_at"),
            impression__served_at__lte=before,
            occurred_at__lte=before,
            occurred_at__gte=before - window,
        )
        .order_by("-occurred_at", "-pk")
        .first()
    )


def attribute_order(*, order: Any, shopper: Shopper | None = None) -> Conversion | None:
    """Credit a countable order to its shopper's last ad click; idempotent per order. None if no click."""
    adapter = get_adapter()
    if not adapter.order_is_countable(order):
        return None
    key = adapter.order_key(order)
    existing = Conversion.objects.filter(order_key=key).first()
    if existing is not None:
        return existing
    if shopper is None:
        customer = adapter.order_customer(order)
        if customer is None:
            return None
        shopper = Shopper.objects.filter(user=customer).first()
        if shopper is None:
            return None
    placed_at = adapter.order_placed_at(order)
    if not isinstance(placed_at, dt.datetime):  # the adapter's guess missed the shop's field (check: adengine.W002)
        log.warning(
            "order %s not attributed: %s.order_placed_at() gave %r, not a datetime",
            key,
            type(adapter).__name__,
            placed_at,
        )
        return None
    click = last_click(shopper=shopper, before=placed_at)
    if click is None:
        return None
    try:
        with transaction.atomic():
            conversion = Conversion.objects.create(
                order_key=key,
                campaign_id=click.campaign_id,
                impression=click.impression,
                click=click,
                shopper=shopper,
                revenue=adapter.order_revenue(order),
                ordered_at=placed_at,
            )
    except IntegrityError:  # attributed concurrently (the signal and the confirmation page)
        return Conversion.objects.filter(order_key=key).first()
    log.info("order %s attributed to campaign %s", key, click.campaign_id)
    return conversion


def sync_conversion(*, order: Any) -> Conversion | None:
    """Keep an attributed order's credit in step with the order, idempotently: cancelled or refunded
    (``order_is_countable`` false) -> reversed, its conversion and revenue taken back; revenue changed (a partial
    refund) -> adjusted; reinstated -> credited again. Figures already rolled up by the strategy are corrected
    in the same transaction, so every report moves at once. None when the order was never credited."""
    adapter = get_adapter()
    key = adapter.order_key(order)
    with transaction.atomic():
        conversion = Conversion.objects.select_for_update().select_related("impression").filter(order_key=key).first()
        if conversion is None:
            return None
        countable = adapter.order_is_countable(order)
        revenue = adapter.order_revenue(order) if countable else Decimal(0)
        delta_conversions = int(countable) - int(conversion.reversed_at is None)
        delta_revenue = revenue - conversion.revenue
        if delta_conversions == 0 and delta_revenue == 0:
            return conversion
        _correct_rollup(conversion, delta_conversions, delta_revenue)
        conversion.revenue = revenue
        conversion.reversed_at = None if countable else timezone.now()
        conversion.save(update_fields=["revenue", "reversed_at"])
    log.info("order %s: credit of campaign %s %s", key, conversion.campaign_id, "adjusted" if countable else "reversed")
    return conversion


def _correct_rollup(conversion: Conversion, conversions: int, revenue: Decimal) -> None:
    """Apply a change of a conversion to the strategy's hourly and daily roll-ups and campaign totals, if it was
    rolled up (the strategy's watermark, locked, is past it); a conversion not rolled up yet is read as it is then."""
    state = StrategyState.objects.select_for_update().filter(key="default").first()
    if state is None or conversion.pk > state.conversion_id:
        return
    from adengine.services.strategy import CONVERSION_KEY, add_to_rollup, conversion_keys, shop_day

    # the key the roll-up filed it under, computed by the roll-up's own expressions
    row = conversion_keys(Conversion.objects.filter(pk=conversion.pk)).get()
    key = tuple(row[name] for name in CONVERSION_KEY)
    hour, campaign, creative, placement, arm = key
    updated = HourlyStats.objects.filter(
        hour=hour, campaign_id=campaign, creative_id=creative, placement_id=placement, arm=arm
    ).update(conversions=F("conversions") + conversions, revenue=F("revenue") + revenue)
    if updated:  # and its day's row of the daily roll-up, which holds the hourly row's counts
        DailyStats.objects.filter(campaign_id=campaign, day=shop_day(hour), placement_id=placement).update(
            conversions=F("conversions") + conversions, revenue=F("revenue") + revenue
        )
    elif conversions >= 0 and revenue >= 0:  # reinstated after the roll-up skipped it (both roll-ups)
        add_to_rollup({key: {"conversions": conversions, "revenue": revenue}})
    Campaign.objects.filter(pk=conversion.campaign_id).update(
        converted=F("converted") + conversions, attributed_revenue=F("attributed_revenue") + revenue
    )
