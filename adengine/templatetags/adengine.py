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
        from adengine.services.tracking import is_bot

        if is_bot(request.headers.get("User-Agent", "")):
            return ""  # crawlers' page views are nobody's interests (and create no shopper or session)
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
        from adengine.services.attribution import attribute_order
        from adengine.services.behaviour import record_order
        from adengine.services.shoppers import shopper_for_request

        if get_adapter().order_customer(order) is None:
            shopper = shopper_for_request(request)
            if shopper is not None:
                record_order(order=order, shopper=shopper)
                attribute_order(order=order, shopper=shopper)
    except Exception:
        log.exception("adengine_track_order failed; the page renders without it")
    return ""


def _category_keys(product: Any, category: Any) -> tuple[str, tuple[str, ...]]:
    """(the page's category key, the keys of every category of the product) through the shop adapter."""
    from adengine.adapters import get_adapter

    adapter = get_adapter()
    page = adapter.category_key(category) if category is not None and not isinstance(category, str) else category or ""
    return str(page), (adapter.category_keys(product) if product is not None else ())


@register.simple_tag(takes_context=True)
def ad_slot(
    context: dict[str, Any], key: str, product: Any = None, category: Any = None, query: str = "", page: str = ""
) -> str:
    """Render the ads of a placement: ``{% ad_slot "product-sidebar" product=product %}``.

    Shows each ad with a visible "Sponsored" label and a "Why this ad?" link. Never raises: on an unknown
    placement or any failure it renders nothing (and logs).
    """
    request = context.get("request")
    try:
        from adengine.serving import IndexNotReady, UnknownPlacement
        from adengine.serving.presentation import PageSlots

        page_category, product_categories = _category_keys(product, category)
        try:
            return PageSlots.of(request).render(
                key,
                product=product,
                page_category=page_category,
                product_categories=product_categories,
                query=query,
                page=page,
            )
        except UnknownPlacement:
            log.warning("ad_slot: no placement %r; rendering nothing", key)
            return ""
        except IndexNotReady:  # this process is starting: no ads until its candidate index is built
            log.info("ad_slot %r: the serving index is being built; rendering nothing", key)
            return ""
    except Exception:
        log.exception("ad_slot %r failed; the page renders without it", key)
        return ""
