"""What an ad preview shows, read as serving would read it but before approval: an asset with the campaign's best
approved-or-waiting partner copy (a headline with a description, a description with a headline), its promoted
product's card and where it would land, and the placements it would appear in.

The rendering is ``adengine.admin.previews``; nothing here logs, counts or signs anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Case, F, IntegerField, Q, When

from adengine.adapters import get_adapter
from adengine.conf import settings as ad_settings
from adengine.models import Campaign, Creative, Placement
from adengine.serving.snapshot import ProductCard

HEADLINE, DESCRIPTION = Creative.AssetType.HEADLINE, Creative.AssetType.DESCRIPTION


@dataclass(frozen=True)
class PreviewAd:
    """One ad as a preview shows it: its copy (either may be missing), product card and landing page."""

    language: str
    headline: Creative | None
    description: Creative | None
    product: ProductCard | None
    landing_url: str

    @property
    def note(self) -> str:
        """What the preview stands in for, in words ("" when both texts are approved)."""
        missing = [
            f"no approved or waiting {kind} in this language"
            for kind, asset in (("headline", self.headline), ("description", self.description))
            if asset is None
        ]
        waiting = [
            f"the {asset.get_asset_type_display()} {state(asset)}"
            for asset in (self.headline, self.description)
            if asset is not None and asset.status != Creative.Status.APPROVED
        ]
        return "; ".join(waiting + missing)


def state(creative: Creative) -> str:
    """A creative's review state in words, as a preview names it."""
    if not creative.passes_rules:
        return "fails the rules"
    if creative.status == Creative.Status.DRAFT:
        return "waits for review"
    return f"is {creative.get_status_display()}"


@dataclass
class CampaignCopy:
    """One campaign's preview inputs, read once: its placements, product card and approved-or-waiting copy."""

    campaign: Campaign
    placements: list[Placement]
    product: ProductCard | None
    # language -> asset type -> the approved-or-waiting assets, best first (approved, a person's, then by score)
    assets: dict[str, dict[str, list[Creative]]] = field(default_factory=dict)

    def best(self, language: str, asset_type: str, *, besides: Creative | None = None) -> Creative | None:
        """The best approved-or-waiting asset of a type in a language (``besides`` excluded)."""
        found = self.assets.get(language, {}).get(asset_type, [])
        return next((c for c in found if besides is None or c.pk != besides.pk), None)

    def languages(self) -> list[str]:
        """The campaign's languages, then any other in which it has copy."""
        return list(dict.fromkeys([*(self.campaign.languages or []), *self.assets]))

    def ad(self, *, language: str, headline: Creative | None, description: Creative | None) -> PreviewAd:
        landing = (headline.landing_url if headline is not None else "") or ""
        landing = landing or (self.product.url if self.product else "") or self.campaign.landing_url or "/"
        return PreviewAd(language, headline, description, self.product, landing)

    def for_asset(self, creative: Creative) -> PreviewAd:
        """An asset (any status: drafts and failing ones too) with the best partner copy of its language."""
        if creative.asset_type == HEADLINE:
            partner = self.best(creative.language, DESCRIPTION)
            return self.ad(language=creative.language, headline=creative, description=partner)
        partner = self.best(creative.language, HEADLINE)
        return self.ad(language=creative.language, headline=partner, description=creative)

    def best_ads(self) -> list[PreviewAd]:
        """Per language with a headline: its best headline with its best description (the ad serving leads with)."""
        out = []
        for language in self.languages():
            headline = self.best(language, HEADLINE)
            if headline is not None:
                out.append(self.ad(language=language, headline=headline, description=self.best(language, DESCRIPTION)))
        return out


def placements(campaign: Campaign) -> list[Placement]:
    """Where the campaign's ads appear: its chosen placements, else every active one (as serving reads it)."""
    chosen = list(campaign.placements.all())
    return chosen or list(Placement.objects.filter(is_active=True))


def product_card(campaign: Campaign) -> ProductCard | None:
    """The card of the campaign's first promoted product in stock (serving never advertises what cannot be bought)."""
    from adengine.serving.parts import product_card as card

    through = Campaign.promoted_products.through
    product_fk = Campaign.promoted_products.field.m2m_reverse_field_name()
    ids = list(through.objects.filter(campaign_id=campaign.pk).order_by("pk").values_list(product_fk, flat=True))
    if not ids:
        return None
    adapter = get_adapter()
    found = {p.pk: p for p in adapter.products().filter(pk__in=ids)}
    for pk in ids:
        product = found.get(pk)
        stock = adapter.product_stock(product) if product is not None else 0
        if product is not None and (stock is None or stock > 0):
            return card(product, adapter=adapter, languages=list(ad_settings.LANGUAGES))
    return None


def campaign_copy(campaign: Campaign) -> CampaignCopy:
    """A campaign's preview inputs in a fixed number of queries."""
    found = (
        Creative.objects.filter(campaign=campaign, passes_rules=True)  # approved, or waiting for review
        .filter(Q(status=Creative.Status.APPROVED) | Q(status=Creative.Status.DRAFT))
        .annotate(
            waiting=Case(When(status=Creative.Status.APPROVED, then=0), default=1, output_field=IntegerField()),
            generated=Case(When(source=Creative.Source.HUMAN, then=0), default=1, output_field=IntegerField()),
        )
        .order_by("waiting", "generated", F("score").desc(nulls_last=True), "pk")
    )
    assets: dict[str, dict[str, list[Creative]]] = {}
    for creative in found:
        assets.setdefault(creative.language, {}).setdefault(creative.asset_type, []).append(creative)
    return CampaignCopy(campaign, placements(campaign), product_card(campaign), assets)
