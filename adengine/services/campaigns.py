"""Campaign upkeep: target vectors, computed in the worker so that serving never loads a model."""

from __future__ import annotations

import hashlib
import logging

from django.utils import timezone

from adengine.ml.encoder import get_encoder
from adengine.models import Campaign, ProductVector
from adengine.selectors.audience import target_text, target_vector

log = logging.getLogger(__name__)


def target_tag(campaign: Campaign, encoder_version: str) -> str:
    """What a target vector was computed from: encoder version and a hash of the campaign's inputs."""
    products = sorted(str(p) for p in campaign.promoted_products.values_list("pk", flat=True))
    embedded = ProductVector.objects.filter(product_id__in=products).count()
    digest = hashlib.sha1(f"{target_text(campaign)}|{products}|{embedded}".encode()).hexdigest()[:12]
    return f"{encoder_version[:60]}:{digest}"


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
