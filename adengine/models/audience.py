"""Product vectors and the registry of encoder versions (base and fine-tuned)."""

from __future__ import annotations

from django.db import models
from pgvector.django import HnswIndex, VectorField

from adengine.conf import product_model_name

from .events import VECTOR_DIMENSIONS


class ProductVector(models.Model):
    """The embedding of one product's text, refreshed when the product changes."""

    product = models.OneToOneField(
        product_model_name(),
        models.CASCADE,
        primary_key=True,
        related_name="+",
        verbose_name="product",
        help_text="The host shop's product.",
    )
    embedding = VectorField("embedding", dimensions=VECTOR_DIMENSIONS, help_text="Unit-length passage embedding.")
    model_version = models.CharField(
        "model version", max_length=80, help_text="Encoder version that produced the embedding."
    )
    text_hash = models.CharField(
        "text hash", max_length=64, help_text="SHA-256 of the embedded text; unchanged text is not re-embedded."
    )
    updated_at = models.DateTimeField("updated", auto_now=True, help_text="When the vector was written.")

    class Meta:
        verbose_name = "product vector"
        indexes = [
            HnswIndex(
                name="adengine_product_vec_hnsw",
                fields=["embedding"],
                m=16,
                ef_construction=64,
                opclasses=["vector_cosine_ops"],
            ),
        ]

    def __str__(self) -> str:
        return f"vector of product {self.product_id}"


class EncoderModel(models.Model):
    """A version of the text encoder: the configured base model or a fine-tuned folder."""

    version = models.CharField(
        "version", max_length=80, unique=True, help_text="Name of this encoder version, e.g. ft-20261130-1015."
    )
    path = models.CharField("folder", max_length=500, help_text="Model folder on disk.")
    base = models.CharField("base model", max_length=200, help_text="What it was fine-tuned from.")
    is_active = models.BooleanField(
        "active", default=False, help_text="The encoder used for all vectors; at most one is active."
    )
    metrics = models.JSONField("metrics", default=dict, blank=True, help_text="Evaluation before and after.")
    created_at = models.DateTimeField("created", auto_now_add=True, help_text="When it was trained.")

    class Meta:
        verbose_name = "encoder version"
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"], condition=models.Q(is_active=True), name="adengine_one_active_encoder"
            )
        ]

    def __str__(self) -> str:
        return self.version + (" (active)" if self.is_active else "")
