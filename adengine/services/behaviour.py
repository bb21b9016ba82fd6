"""Recording behaviour: searches, product views, add-to-cart and purchases."""

from __future__ import annotations

import datetime as dt
import logging
import re
from decimal import Decimal
from typing import Any

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone

from adengine.adapters import get_adapter
from adengine.conf import settings as ad_settings
from adengine.models import BehaviourEvent, Shopper
from adengine.text import without_contact_details

log = logging.getLogger(__name__)

MAX_QUERY_CHARS = 200
_SPACE = re.compile(r"[\s\x00-\x1f\x7f]+")  # control characters too: PostgreSQL cannot store a NUL


class InvalidEvent(ValueError):
    """The event cannot be recorded; the message says why."""


def scrub_query(text: str) -> str:
    """A search query without e-mail addresses, phone numbers or URLs, whitespace and control characters collapsed
    into single spaces."""
    return _SPACE.sub(" ", without_contact_details(text or "")).strip()[:MAX_QUERY_CHARS]


def _touch(shopper_id: int, when: dt.datetime) -> None:
    # PostgreSQL's GREATEST ignores NULL, so a first event sets the column too.
    Shopper.objects.filter(pk=shopper_id).update(last_event_at=Greatest(F("last_event_at"), when))


def record_event(
    *,
    shopper: Shopper,
    kind: str,
    product: Any = None,
    query: str = "",
    quantity: int = 1,
    revenue: Decimal | None = None,
    occurred_at: dt.datetime | None = None,
    source: str = BehaviourEvent.Source.TAG,
    dedupe_key: str | None = None,
    trigger_refresh: bool = True,
) -> BehaviourEvent | None:
    """Record one behaviour event; returns None when it is not kept (no consent, duplicate)."""
    if kind not in BehaviourEvent.Kind.values:
        raise InvalidEvent(f"unknown kind {kind!r}; expected one of {', '.join(BehaviourEvent.Kind.values)}")
    if kind == BehaviourEvent.Kind.SEARCH:
        query = scrub_query(query)
        if not query:
            raise InvalidEvent("a search event needs a non-empty query")
        product = None
    elif product is None:
        raise InvalidEvent(f"a {kind} event needs a product")
    if quantity < 1:
        raise InvalidEvent("quantity must be at least 1")
    if not shopper.personalisation and kind != BehaviourEvent.Kind.PURCHASE:
        return None  # no consent: browsing is not kept (purchases are the shop's own records)
    occurred_at = occurred_at or timezone.now()
    event = BehaviourEvent(
        shopper=shopper,
        kind=kind,
        product=product,
        query=query if kind == BehaviourEvent.Kind.SEARCH else "",
        quantity=quantity,
        revenue=revenue,
        occurred_at=occurred_at,
        source=source,
        dedupe_key=dedupe_key,
    )
    try:
        with transaction.atomic():
            event.save()
            _touch(shopper.pk, occurred_at)
    except IntegrityError:
        if dedupe_key and BehaviourEvent.objects.filter(dedupe_key=dedupe_key).exists():
            return None  # recorded before: idempotent
        raise
    if trigger_refresh:
        schedule_refresh()
    return event


def purchase_key(order_key: str, product_pk: object) -> str:
    """Idempotency key of one order line's purchase event (the order signal and the import share it)."""
    return f"order:{order_key}:{product_pk}"


def record_order(*, order: Any, shopper: Shopper | None = None) -> int:
    """Record an order's lines as purchase events, once per line; returns how many were new. An order that no
    longer counts (cancelled, refunded) has its purchases withdrawn instead: they are not the shopper's taste."""
    adapter = get_adapter()
    if not adapter.order_is_countable(order):
        withdrawn, _ = BehaviourEvent.objects.filter(
            kind=BehaviourEvent.Kind.PURCHASE, dedupe_key__startswith=purchase_key(adapter.order_key(order), "")
        ).delete()
        if withdrawn:
            schedule_refresh()
        return 0
    if shopper is None:
        customer = adapter.order_customer(order)
        if customer is None:
            return 0
        from adengine.services.shoppers import get_or_create_for_user

        shopper = get_or_create_for_user(user=customer)
    key = adapter.order_key(order)
    placed_at = adapter.order_placed_at(order)
    new = 0
    for line in adapter.order_lines(order):
        event = record_event(
            shopper=shopper,
            kind=BehaviourEvent.Kind.PURCHASE,
            product=line.product,
            quantity=line.quantity,
            revenue=line.revenue,
            occurred_at=placed_at,
            source=BehaviourEvent.Source.ORDER,
            dedupe_key=purchase_key(key, line.product.pk),
            trigger_refresh=False,
        )
        new += event is not None
    if new:
        schedule_refresh()
    return new


def schedule_refresh() -> None:
    """Enqueue an incremental interest refresh after commit, at most once per debounce window.

    Beat runs the refresh on a schedule anyway; this only makes fresh behaviour count sooner.
    Failure to reach the broker is logged, never raised: recording behaviour must not break a page.
    """
    debounce = int(ad_settings.REFRESH_DEBOUNCE_SECONDS)
    if debounce <= 0 or not cache.add("adengine:refresh-scheduled", 1, timeout=debounce):
        return
    from adengine.queues import enqueue_after_commit

    enqueue_after_commit("adengine.refresh_interests", countdown=min(debounce, 10))
