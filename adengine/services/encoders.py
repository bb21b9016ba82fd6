"""Encoder versions: register a fine-tuned model, switch to it (which re-embeds), switch back."""

from __future__ import annotations

from collections.abc import Callable

from adengine.db import activate_one
from adengine.ml.encoder import get_encoder
from adengine.models import EncoderModel
from adengine.services.interests import mark_all_stale, refresh_interests
from adengine.services.products import embed_products


def register(*, version: str, path: str, base: str, metrics: dict) -> EncoderModel:
    """Record a trained encoder version (inactive)."""
    return EncoderModel.objects.create(version=version, path=path, base=base, metrics=metrics)


def set_active(*, version: str | None) -> EncoderModel | None:
    """Make ``version`` the encoder in use (None: back to the configured base model)."""
    return activate_one(EncoderModel, version)


def reembed_all(*, progress: Callable[[str, int], None] | None = None) -> dict:
    """Re-embed every product and recompute every interest vector with the encoder in use."""
    encoder = get_encoder()
    report = progress or (lambda kind, n: None)
    products = embed_products(force=True, encoder=encoder, progress=lambda n: report("products", n))
    mark_all_stale()
    result = refresh_interests(encoder=encoder, progress=lambda n: report("shoppers", n))
    return {"encoder": encoder.version, "products": products, **result}
