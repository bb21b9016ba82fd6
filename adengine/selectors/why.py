""" "Why this ad?": the main parameters behind a shown ad, in words."""

from __future__ import annotations

from adengine.adapters import get_adapter
from adengine.conf import settings as ad_settings
from adengine.models import Impression, Shopper


def explain(impression: Impression, *, viewer: Shopper | None) -> dict:
    """The campaign's targeting, the page context and, only to the shopper who saw it, the matching interests."""
    from adengine.selectors.audience import why_in_audience

    campaign = impression.campaign
    adapter = get_adapter()
    lang = impression.language or ad_settings.default_language
    ctx = impression.context or {}
    own = viewer is not None and impression.shopper_id == viewer.pk
    # the search that led to the ad is the shopper's own words: only they see it, never whoever holds the link
    page = {
        "page": ctx.get("page", ""),
        "category": ctx.get("category", ""),
        "query": ctx.get("query", "") if own else "",
    }
    if impression.product_id is not None:
        product = adapter.products().filter(pk=impression.product_id).first()
        page["promoted_product"] = adapter.product_title(product, lang) if product is not None else ""
    interests: list[dict] = []
    if own and impression.personalised and viewer.personalisation and viewer.interest_vector is not None:
        target = campaign.target_vector
        if target is not None:
            interests = [
                {"activity": kind, "item": what, "similarity": round(sim, 3)}
                for kind, what, sim in why_in_audience(viewer, target, limit=3)
            ]
    return {
        "advertiser": campaign.advertiser.name,
        "campaign": campaign.name,
        "sponsored": campaign.tier == campaign.Tier.SPONSORED,
        "targeting": {
            "description": campaign.description,
            "keywords": list(campaign.keywords),
            "categories": list(campaign.categories),
            "audience_threshold": campaign.audience_min_similarity,
        },
        "page_context": page,
        "personalised": bool(impression.personalised),
        "your_matching_interests": interests,
        "personalisation_allowed": bool(viewer.personalisation) if viewer is not None else None,
        "ranking": (
            "Ads are ranked by the advertiser's bid times the predicted chance of a click, which combines how "
            "often this ad was clicked so far with how well the campaign fits this page"
            + (" and your interests." if impression.personalised else ".")
        ),
    }
