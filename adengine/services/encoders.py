"""Encoder versions: register a fine-tuned model, switch to it (which re-embeds), switch back."""

from __future__ import annotations

from collections.abc import Callable

from django.db import transaction

from adengine.ml.encoder import get_encoder
from adengine.models import EncoderModel
from adengine.services.interests import mark_all_stale, refresh_interests
from adengine.services.products import embed_products


def register(*, version: str, path: str, base: str, metrics: dict) -> EncoderModel:
    """Record a trained encoder version (inactive)."""
    return EncoderModel.objects.create(version=version, path=path, base=base, metrics=metrics)


@transaction.atomic
def set_active(*, version: str | None) -> EncoderModel | None:
    """Make ``version`` the encoder in use (None: back to the configured base model)."""
    EncoderModel.objects.filter(is_active=True).update(is_active=False)
    if version is None:
        return None
    model = EncoderModel.objects.select_for_update().get(version=version)
    model.is_active = True
    model.save(update_fields=["is_active"])
    return model


def reembed_all(*, progress: Callable[[str, int], None] | None = None) -> dict:
    """Re-embed every product and recompute every interest vector with the encoder in use."""
    encoder = get_encoder()
    report = progress or (lambda kind, n: None)
    products = embed_products(force=True, encoder=encoder, progress=lambda n: report("products", n))
    mark_all_stale()
    result = refresh_interests(encoder=encoder, progress=lambda n: report("shoppers", n))
    return {"encoder": encoder.version, "products": products, **result}
