"""How a chosen ad is handed to templates and API clients: its texts, product and signed URLs.

A storefront page's slots (``PageSlots``, one per request): the shopper and the language are read once per
request, a slot of the same placement and page shown twice on a page shares one decision (and its markup), and
a slot's markup is rendered once per set of ads (their assets, product and language, the placement and the page
language) and kept per process (``SERVING_SLOT_CACHE``): each view only signs its impressions' URLs into it.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from typing import Any
from urllib.parse import quote

from django.core.signals import setting_changed
from django.utils.encoding import iri_to_uri
from django.utils.html import conditional_escape
from django.utils.safestring import mark_safe

from adengine.conf import settings as ad_settings

from . import tokens
from .engine import Ad, Decision

SLOT_TEMPLATE = "adengine/slot.html"


def ad_data(ad: Ad, *, build_uri: Any = None, urls: dict[str, str] | None = None) -> dict:
    """A chosen ad as plain data; ``build_uri`` (request.build_absolute_uri) makes the URLs absolute.

    ``urls`` replaces the signed view, click and "Why this ad?" URLs (the admin's previews: nothing to count).
    """
    urls = dict(urls) if urls is not None else tokens.urls(ad.nonce, ad.row or None)
    if build_uri is not None:
        urls = {k: build_uri(v) for k, v in urls.items()}
    product = ad.product
    return {
        "impression": ad.nonce.hex,
        "campaign_id": ad.campaign_id,
        "advertiser": ad.advertiser,
        "sponsored": not ad.house,
        "house": ad.house,
        "headline": ad.headline,
        "description": ad.description,
        "language": ad.language,
        "position": ad.position,
        "product": product,
        "product_title": product.title(ad.language) if product else "",
        "price_text": product.price_text(ad.language) if product else "",
        **urls,
    }


def render_slot(*, ads: list[dict], placement: Any, decision_id: Any, request: Any) -> str:
    """A placement's ads as the storefront shows them (``{% ad_slot %}``; the admin's previews render the same)."""
    from django.template.loader import render_to_string

    context = {"ads": ads, "placement": placement, "decision_id": decision_id, "request": request}
    return render_to_string(SLOT_TEMPLATE, context)


def uri_builder(request: Any):
    """``request.build_absolute_uri`` for the many URLs of one response: the scheme and host (which honour
    SECURE_PROXY_SSL_HEADER and USE_X_FORWARDED_HOST) worked out once; the same result for every URL."""
    base = request.build_absolute_uri("/")[:-1]

    def build(url: str) -> str:
        if url.startswith("/") and not url.startswith("//") and "/./" not in url and "/../" not in url:
            return iri_to_uri(base + url)
        return request.build_absolute_uri(url)

    return build


def decision_data(decision: Decision, *, build_uri: Any = None) -> dict:
    """A decision as the API returns it; ``build_uri`` (request.build_absolute_uri, which honours the host's
    SECURE_PROXY_SSL_HEADER and USE_X_FORWARDED_HOST) makes every URL in it absolute, for apps."""

    def absolute(url: str) -> str:
        return build_uri(url) if url and build_uri is not None else url

    ads = []
    for ad in decision.ads:
        data = ad_data(ad, build_uri=build_uri)
        product = data.pop("product")
        data["product"] = (
            None
            if product is None
            else {
                "id": str(product.pk),  # product_id's first name, kept for existing clients
                "product_id": str(product.pk),
                "product_key": product.key or str(product.pk),
                "title": data["product_title"],
                "price": None if product.price is None else str(product.price),
                "currency": product.currency,
                "price_text": data["price_text"],
                "image_url": absolute(product.image_url),
                "url": absolute(product.url),
            }
        )
        data["landing_url"] = absolute(ad.landing_url)
        data.pop("product_title")
        data.pop("price_text")
        ads.append(data)
    return {
        "decision_id": str(decision.id),
        "placement": decision.placement.key,
        "format": decision.placement.format,
        "personalised": decision.personalised,
        "ads": ads,
    }


# ---------------------------------------------------------------- a storefront page's slots
_PLACEHOLDER = re.compile(r"adengineslot(\d+)(view|click|why)x|adengineslotdecisionx")
_URL_KINDS = ("view", "click", "why")


class _SlotCache:
    """Rendered slot markup with placeholders for the per-impression URLs, per process, least recently used out."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: OrderedDict[tuple, str] = OrderedDict()

    def get(self, key: tuple) -> str | None:
        with self.lock:
            html = self.entries.get(key)
            if html is not None:
                self.entries.move_to_end(key)
            return html

    def put(self, key: tuple, html: str) -> None:
        size = int(ad_settings.SERVING_SLOT_CACHE)
        with self.lock:
            self.entries[key] = html
            while len(self.entries) > size:
                self.entries.popitem(last=False)

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()


slot_cache = _SlotCache()


def _forget_slots(**kwargs: Any) -> None:
    slot_cache.clear()  # templates, languages or ADENGINE changed (tests, override_settings)


setting_changed.connect(_forget_slots)


def _placeholders(i: int) -> dict[str, str]:
    return {f"{kind}_url": f"adengineslot{i}{kind}x" for kind in _URL_KINDS}


def _static_key(data: dict) -> tuple:
    """What a rendered ad shows besides its URLs."""
    product = data["product"]
    return (
        *(data[k] for k in ("campaign_id", "advertiser", "house", "headline", "description", "language", "position")),
        None if product is None else (str(product.pk), product.image_url, product.url),
        data["product_title"],
        data["price_text"],
    )


def render_slot_for_page(decision: Decision, *, request: Any) -> str:
    """A decision's slot markup for a storefront page: rendered once per set of ads and kept (``SERVING_SLOT_CACHE``;
    a template that does not show each URL as it is given is rendered every time), then this view's signed URLs put
    in."""
    from django.utils.translation import get_language

    datas = [ad_data(ad, urls=_placeholders(i)) for i, ad in enumerate(decision.ads)]
    placement = decision.placement
    key = (placement.key, placement.format, get_language(), tuple(_static_key(d) for d in datas))
    html = slot_cache.get(key) if int(ad_settings.SERVING_SLOT_CACHE) > 0 else None
    if html is None:
        html = render_slot(ads=datas, placement=placement, decision_id="adengineslotdecisionx", request=request)
        shown = {m.group(0) for m in _PLACEHOLDER.finditer(html)}
        wanted = {p for d in datas for p in (d["view_url"], d["click_url"], d["why_url"])}
        if not wanted <= shown:  # an overridden template that transforms the URLs: render this view as it is
            return render_slot(
                ads=[ad_data(ad, urls=_page_urls(ad, request)) for ad in decision.ads],
                placement=placement,
                decision_id=decision.id,
                request=request,
            )
        if int(ad_settings.SERVING_SLOT_CACHE) > 0:
            slot_cache.put(key, html)
    urls = [_page_urls(ad, request) for ad in decision.ads]
    decision_id = str(conditional_escape(str(decision.id)))

    def fill(match: re.Match) -> str:
        if match.group(1) is None:
            return decision_id
        return str(conditional_escape(urls[int(match.group(1))][f"{match.group(2)}_url"]))

    return mark_safe(_PLACEHOLDER.sub(fill, html))  # the template's escaped markup, escaped URLs put in


def _page_urls(ad: Ad, request: Any) -> dict[str, str]:
    """An ad's signed URLs on a storefront page; "Why this ad?" leads back to the page."""
    urls = tokens.urls(ad.nonce, ad.row or None)
    if request is not None:
        urls["why_url"] += "?next=" + quote(request.get_full_path(), safe="/")
    return urls


class PageSlots:
    """One storefront request's ad slots: its shopper and language read once, one decision per slot (placement and
    page) shared by every slot that shows it, the markup kept per set of ads."""

    ATTRIBUTE = "_adengine_page_slots"

    def __init__(self, request: Any) -> None:
        from django.utils.translation import get_language

        from adengine.services.shoppers import shopper_for_request

        self.request = request
        # an existing shopper only: a page view alone creates no shopper or session row (bots, one-page visits)
        self.shopper = shopper_for_request(request, create=False) if request is not None else None
        self.language = get_language()
        self.page = request.resolver_match.url_name if request is not None and request.resolver_match else ""
        self.rendered: dict[tuple, str] = {}

    @classmethod
    def of(cls, request: Any) -> PageSlots:
        """The request's slots (made on its first slot)."""
        slots = getattr(request, cls.ATTRIBUTE, None) if request is not None else None
        if slots is None:
            slots = cls(request)
            if request is not None:
                try:
                    setattr(request, cls.ATTRIBUTE, slots)
                except AttributeError:  # an object that takes no attributes: nothing shared
                    pass
        return slots

    def render(
        self, key: str, *, product: Any = None, page_category: str = "", product_categories: tuple[str, ...] = (),
        query: str = "", page: str = "",
    ) -> str:  # fmt: skip
        """The markup of one slot (empty: no ads); UnknownPlacement / IndexNotReady from ``decide`` pass through."""
        from . import PageContext, decide

        context = PageContext(
            page=page or self.page, product=getattr(product, "pk", None), category=page_category, query=query or ""
        )
        slot = (key, context, product_categories)
        if slot in self.rendered:  # the same slot again on this page: the same decision, shown once more
            return self.rendered[slot]
        decision = decide(
            placement_key=key,
            shopper=self.shopper,
            context=context,
            language=self.language,
            product_categories=product_categories,
        )
        html = render_slot_for_page(decision, request=self.request) if decision.ads else ""
        self.rendered[slot] = html
        return html
