"""Campaign upkeep: target vectors (computed in the worker, so serving never loads a model) and campaign files."""

from __future__ import annotations

import hashlib
import logging

import numpy as np
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from adengine.ml.encoder import Encoder, get_encoder
from adengine.ml.profile import compose_target
from adengine.models import Advertiser, Campaign, Creative, Placement, ProductVector
from adengine.selectors.audience import target_text

log = logging.getLogger(__name__)


def target_tag(campaign: Campaign, encoder_version: str) -> str:
    """What a target vector was computed from: encoder version and a hash of the campaign's inputs."""
    products = sorted(str(p) for p in campaign.promoted_products.values_list("pk", flat=True))
    embedded = ProductVector.objects.filter(product_id__in=products).count()
    digest = hashlib.sha1(f"{target_text(campaign)}|{products}|{embedded}".encode()).hexdigest()[:12]
    return f"{encoder_version[:60]}:{digest}"


def target_vector(campaign: Campaign, *, encoder: Encoder) -> np.ndarray | None:
    """The campaign's target vector from its promoted products' vectors and its words (None with neither)."""
    product_ids = list(campaign.promoted_products.values_list("pk", flat=True))
    vecs = [
        np.asarray(v, np.float32)
        for v in ProductVector.objects.filter(product_id__in=product_ids).values_list("embedding", flat=True)
    ]
    text = target_text(campaign)
    return compose_target(vecs, encoder.encode_passages([text])[0] if text else None)


def campaign_target(campaign: Campaign) -> np.ndarray | None:
    """The campaign's stored target vector, computed first when its words, products or the encoder changed."""
    refresh_targets(campaign_ids=[campaign.pk])
    stored = Campaign.objects.values_list("target_vector", flat=True).get(pk=campaign.pk)
    return None if stored is None else np.asarray(stored, np.float32)


def refresh_targets(*, campaign_ids: list[int] | None = None, force: bool = False) -> int:
    """(Re)compute the target vectors whose inputs or encoder changed; returns how many were written."""
    qs = Campaign.objects.exclude(status=Campaign.Status.ENDED)
    if campaign_ids is not None:
        qs = qs.filter(pk__in=campaign_ids)
    encoder = None
    written = 0
    for campaign in qs:
        if encoder is None:
            encoder = get_encoder()
        tag = target_tag(campaign, encoder.version)
        if not force and campaign.target_model == tag and campaign.target_vector is not None:
            continue
        vector = target_vector(campaign, encoder=encoder)
        # update(), not save(): no signal, so this does not enqueue itself again; updated_at moves so that
        # serving processes pick the new target up.
        Campaign.objects.filter(pk=campaign.pk).update(
            target_vector=vector, target_model=tag, updated_at=timezone.now()
        )
        written += 1
    return written


class SpecError(ValueError):
    """A campaign file entry that cannot be applied; the message names the entry and the problem."""


CAMPAIGN_FIELDS = {
    "advertiser", "name", "status", "description", "keywords", "languages", "brand_voice", "promoted_products",
    "categories", "objective", "pricing", "bid", "total_budget", "daily_budget", "starts_at", "ends_at", "tier",
    "frequency_cap", "landing_url", "audience_min_similarity", "placements", "assets",
}  # fmt: skip
PLACEMENT_FIELDS = {"key", "name", "format", "max_ads", "allow_house_ads", "is_active"}


def apply_placement(spec: dict, *, where: str) -> Placement:
    """Create or update a placement from a dict (keys as in PLACEMENT_FIELDS)."""
    if not isinstance(spec, dict) or not spec.get("key"):
        raise SpecError(f"{where}: a placement needs a 'key'")
    unknown = set(spec) - PLACEMENT_FIELDS
    if unknown:
        raise SpecError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    values = {k: v for k, v in spec.items() if k != "key"}
    values.setdefault("name", spec["key"])
    placement = Placement(key=spec["key"], **values)
    try:
        placement.full_clean(validate_unique=False)
    except ValidationError as exc:
        raise SpecError(f"{where}: {_messages(exc)}") from None
    obj, _ = Placement.objects.update_or_create(key=spec["key"], defaults=values)
    return obj


def _messages(exc: ValidationError) -> str:
    return "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())


@transaction.atomic
def apply_campaign(spec: dict, *, where: str) -> tuple[Campaign, bool, list[str]]:
    """Create or update a campaign (idempotent on advertiser and name) with its products, placements and
    human-written assets (checked by the advertising rules; passing ones approved). Returns (campaign,
    created, notes)."""
    from adengine.adapters import get_adapter
    from adengine.services.creatives import CreativeRequestError, add_human_asset, review

    if not isinstance(spec, dict) or not spec.get("advertiser") or not spec.get("name"):
        raise SpecError(f"{where}: needs 'advertiser' and 'name'")
    unknown = set(spec) - CAMPAIGN_FIELDS
    if unknown:
        raise SpecError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    adapter = get_adapter()
    products = []
    for key in spec.get("promoted_products", []):
        product = adapter.find_product(str(key))
        if product is None:
            raise SpecError(f"{where}: no product {key!r} in the shop")
        products.append(product)
    placements = []
    for key in spec.get("placements", []):
        placement = Placement.objects.filter(key=key).first()
        if placement is None:
            raise SpecError(f"{where}: no placement {key!r}")
        placements.append(placement)
    advertiser, _ = Advertiser.objects.get_or_create(name=spec["advertiser"])
    values = {
        k: v for k, v in spec.items() if k not in {"advertiser", "name", "promoted_products", "placements", "assets"}
    }
    for key in ("starts_at", "ends_at"):
        if values.get(key):
            parsed = parse_datetime(values[key])
            if parsed is None:
                raise SpecError(f"{where}: {key} must be an ISO date-time")
            values[key] = parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed)
    campaign = Campaign.objects.filter(advertiser=advertiser, name=spec["name"]).first()
    created = campaign is None
    campaign = campaign or Campaign(advertiser=advertiser, name=spec["name"])
    for key, value in values.items():
        setattr(campaign, key, value)
    try:
        campaign.full_clean(exclude=["promoted_products", "placements", "target_vector"])
    except ValidationError as exc:
        raise SpecError(f"{where}: {_messages(exc)}") from None
    campaign.save()
    campaign.promoted_products.set(products)
    campaign.placements.set(placements)
    notes = []
    assets = spec.get("assets") or {}
    if not isinstance(assets, dict):
        raise SpecError(f"{where}: 'assets' maps a language to its headlines and descriptions")
    for language, texts in assets.items():
        for field, asset_type in (("headlines", "headline"), ("descriptions", "description")):
            for text in (texts or {}).get(field, []):
                existing = Creative.objects.filter(
                    campaign=campaign, asset_type=asset_type, language=language, text=text
                ).first()
                if existing is None:
                    try:
                        existing = add_human_asset(
                            campaign=campaign, asset_type=asset_type, language=language, text=text
                        )
                    except CreativeRequestError as exc:
                        raise SpecError(f"{where}: {language} {asset_type} {text!r}: {exc}") from None
                if existing.passes_rules:
                    review(creatives=Creative.objects.filter(pk=existing.pk), approve=True)
                else:
                    notes.append(f"{language} {asset_type} {text!r} fails the rules: {existing.rejection_reasons}")
    return campaign, created, notes


@transaction.atomic
def save_campaign(
    *, campaign: Campaign | None = None, fields: dict, products: list | None = None, placements: list | None = None
) -> Campaign:
    """Create (``campaign`` None) or update a campaign from validated fields, and set its promoted products and
    placements when given; its signals refresh serving and queue its target."""
    campaign = campaign or Campaign()
    for name, value in fields.items():
        setattr(campaign, name, value)
    campaign.save()
    if products is not None:
        campaign.promoted_products.set(products)
    if placements is not None:
        campaign.placements.set(placements)
    return campaign


def set_status(*, campaigns, status: str) -> int:
    """Activate, pause or end campaigns (one save each, so signals refresh serving); returns how many changed."""
    changed = 0
    for campaign in campaigns:
        if campaign.status != status:
            campaign.status = status
            campaign.save(update_fields=["status", "updated_at"])
            changed += 1
    return changed
