"""Ad previews in the admin: an asset, or a campaign's best ad, rendered in each of its placements with the
storefront's own slot template (``adengine.serving.presentation.render_slot``) in the ad's language -- before
approval, and marked "preview -- not served, not counted".

A preview decides nothing and logs nothing: no impression, no view beacon, no signed click or "Why this ad?" URL.
Its link goes straight to the landing page. The creative change page, the campaign's review page and the campaign
change page all render through ``render``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.safestring import SafeString, mark_safe

from adengine.models import Campaign, Creative, Placement
from adengine.selectors.previews import CampaignCopy, PreviewAd, campaign_copy
from adengine.serving.presentation import ad_data, render_slot

MARK = "Preview — not served, not counted"
DECISION_ID = "preview"
# a 1x1 transparent GIF in place of the view beacon: the browser fetches nothing
NO_BEACON = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"


@dataclass(frozen=True)
class Slot:
    placement: Placement
    html: SafeString


@dataclass(frozen=True)
class Block:
    """One ad in one language, in every placement."""

    ad: PreviewAd
    language_name: str
    slots: list[Slot]


def django_language(code: str) -> str:
    """The host's Django language for an ad language ("zh" -> "zh-hans"), so the slot's labels are translated."""
    for known, _ in settings.LANGUAGES:
        if known == code or known.startswith(code + "-"):
            return known
    return code


def slot_html(ad: PreviewAd, placement: Placement, *, campaign: Campaign, request=None) -> SafeString:
    """One ad in one placement, rendered by the storefront's slot template in the ad's language, nothing signed."""
    from adengine.serving.engine import Ad

    served = Ad(
        nonce=uuid.uuid4(),  # names nothing: no impression row is written, no URL is signed with it
        campaign_id=campaign.pk,
        advertiser=campaign.advertiser.name,
        campaign=campaign.name,
        headline=ad.headline.text if ad.headline is not None else "",
        description=ad.description.text if ad.description is not None else "",
        product=ad.product,
        language=ad.language,
        position=0,
        house=campaign.tier == Campaign.Tier.HOUSE,
        landing_url=ad.landing_url,
    )
    urls = {"view_url": NO_BEACON, "click_url": ad.landing_url, "why_url": "#"}
    with translation.override(django_language(ad.language)):
        html = render_slot(
            ads=[ad_data(served, urls=urls)], placement=placement, decision_id=DECISION_ID, request=request
        )
    return mark_safe(html)  # the slot template escaped the copy


def render(ads: list[PreviewAd], copy: CampaignCopy, *, request=None, empty: str = "") -> SafeString:
    """The ads in each of the campaign's placements, under the preview mark."""
    from .review import language_name  # (review renders its cards' previews through this module)

    blocks = [
        Block(
            ad,
            language_name(ad.language),
            [Slot(p, slot_html(ad, p, campaign=copy.campaign, request=request)) for p in copy.placements],
        )
        for ad in ads
    ]
    context = {"blocks": blocks, "mark": MARK, "empty": empty, "has_placements": bool(copy.placements)}
    return mark_safe(render_to_string("adengine/admin/ad_preview.html", context))


def asset_preview(creative: Creative, *, request=None, copy: CampaignCopy | None = None) -> SafeString:
    """An asset (drafts and failing ones too) with the campaign's best partner copy, in each placement."""
    copy = copy or campaign_copy(creative.campaign)
    return render([copy.for_asset(creative)], copy, request=request)


def campaign_preview(campaign: Campaign, *, request=None) -> SafeString:
    """The campaign's current best ad per language (approved or waiting copy), in each placement."""
    copy = campaign_copy(campaign)
    return render(
        copy.best_ads(),
        copy,
        request=request,
        empty="No headline to preview yet: generate copy or write a headline; waiting and approved ones are shown.",
    )
