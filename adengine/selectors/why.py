""" "Why this ad?": the main parameters behind a shown ad, in words."""

from __future__ import annotations

from django.utils.translation import gettext as _

from adengine.adapters import get_adapter
from adengine.conf import settings as ad_settings
from adengine.models import Impression, Shopper


def explain(impression: Impression, *, viewer: Shopper | None, language: str | None = None) -> dict:
    """The campaign's targeting, the page context and, only to the shopper who saw it, the matching interests.

    Product titles are in ``language`` (the reader's, one of ``ADENGINE["LANGUAGES"]``), else in the ad's.
    """
    from adengine.selectors.audience import why_in_audience

    campaign = impression.campaign
    adapter = get_adapter()
    lang = language or impression.language or ad_settings.default_language
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
        if product is not None:  # for apps, which know products by their ids and SKUs
            page["promoted_product_id"] = str(product.pk)
            page["promoted_product_key"] = adapter.product_key(product)
    reasons = _reasons(campaign, ctx, own=own, page=page)
    interests: list[dict] = []
    interest, on_page = ctx.get("interest"), float(ctx.get("page_relevance") or 0.0)
    # the shopper's interests are named only when they decided: their fit beat the page's (older rows, without
    # the logged split, fall back to whether the ad was personalised)
    if "page_relevance" in ctx:
        decided_by_interest = bool(impression.personalised and interest is not None and float(interest) > on_page)
    else:
        decided_by_interest = bool(impression.personalised)
    if own and decided_by_interest and viewer.personalisation and viewer.interest_vector is not None:
        target = campaign.target_vector
        if target is not None:
            interests = [
                {"activity": kind, "item": what, "similarity": round(sim, 3)}
                for kind, what, sim in why_in_audience(viewer, target, limit=3, language=lang)
            ]
    if decided_by_interest:  # to anyone else holding the link: whose browsing it was, without saying what
        reasons.append(
            _("It fits what you have looked at and bought here recently.")
            if own
            else _("It fitted what the shopper it was shown to had looked at and bought here recently.")
        )
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
        "reasons": reasons,
        "personalised": bool(impression.personalised),
        "your_matching_interests": interests,
        "personalisation_allowed": bool(viewer.personalisation) if viewer is not None else None,
        "ranking": _ranking(campaign, personalised=bool(impression.personalised)),
    }


def _ranking(campaign, *, personalised: bool) -> str:
    """How ads are ranked, in the shopper's language."""
    pays = _("per click") if campaign.pricing == campaign.Pricing.CPC else _("per 1,000 views")
    fits = _("how well it fits this page and your interests") if personalised else _("how well it fits this page")
    return " ".join(
        [
            _(
                "Ads are ranked by what the advertiser pays (%(pays)s) times the predicted chance of a click, which "
                "combines how often this ad was clicked so far with %(fits)s."
            )
            % {"pays": pays, "fits": fits},
            _("On product, category and search pages an ad must fit the page or your interests to be shown at all."),
        ]
    )


def _reasons(campaign, ctx: dict, *, own: bool, page: dict) -> list[str]:
    """The factors that decided this impression, from what was logged when it was shown."""
    reasons = []
    if ctx.get("house"):
        reasons.append(_("It is the shop's own promotion, shown where no sponsored ad fitted."))
    if ctx.get("explored"):
        reasons.append(
            _(
                "It was picked at random among the ads that could be shown: a small share of ads is chosen this way "
                "so that the shop keeps learning which ads people find useful."
            )
        )
    on_page = float(ctx.get("page_relevance") or 0.0)
    if on_page >= 1.0:
        reasons.append(_("It advertises the product on the page you were on."))
    elif on_page >= 0.9:
        query = page.get("query")
        reasons.append(
            _('Its keywords match your search "%(query)s".') % {"query": query}
            if own and query
            else _("Its keywords match the search.")
        )
    elif on_page >= 0.8:
        category = ctx.get("category") or ""
        reasons.append(
            _("It targets the category of the page you were on (%(category)s).") % {"category": category}
            if category
            else _("It targets the category of the page you were on.")
        )
    return reasons
