"""Orders credited to ad clicks: the shopper's last counted click within the attribution window."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.db import IntegrityError, transaction

from adengine.adapters import get_adapter
from adengine.conf import settings as ad_settings
from adengine.models import AdEvent, Conversion, Shopper

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
