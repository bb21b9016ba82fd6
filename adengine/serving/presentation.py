"""How a chosen ad is handed to templates and API clients: its texts, product and signed URLs."""

from __future__ import annotations

from typing import Any

from django.utils.encoding import iri_to_uri

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
