"""Template tags for storefront pages. A tag never raises: on any failure it renders nothing and logs."""

from __future__ import annotations

import logging
from typing import Any

from django import template

log = logging.getLogger(__name__)
register = template.Library()


@register.simple_tag(takes_context=True)
def adengine_track(context: dict[str, Any], kind: str, product: Any = None, query: str = "") -> str:
    """Record a behaviour event for the current shopper: ``{% adengine_track "view" product=p %}``."""
    request = context.get("request")
    if request is None:
        return ""
    try:
        from adengine.models import BehaviourEvent
        from adengine.services.behaviour import record_event
        from adengine.services.shoppers import shopper_for_request

        shopper = shopper_for_request(request)
        if shopper is not None:
            record_event(
                shopper=shopper,
                kind=kind,
                product=product,
                query=query or "",
                source=BehaviourEvent.Source.TAG,
            )
    except Exception:
        log.exception("adengine_track %r failed; the page renders without it", kind)
    return ""


@register.simple_tag(takes_context=True)
def adengine_track_order(context: dict[str, Any], order: Any) -> str:
    """On the order confirmation page: record the order's purchases for this shopper (guests too).

    Orders of logged-in customers are also recorded by the order signal; both use the same
    idempotency keys, so each line counts once.
    """
    request = context.get("request")
    if request is None or order is None:
        return ""
    try:
        from adengine.adapters import get_adapter
        from adengine.services.behaviour import record_order
        from adengine.services.shoppers import shopper_for_request

        if get_adapter().order_customer(order) is None:
            shopper = shopper_for_request(request)
            if shopper is not None:
                record_order(order=order, shopper=shopper)
    except Exception:
        log.exception("adengine_track_order failed; the page renders without it")
    return ""
