"""Product vectors and the registry of encoder versions (base and fine-tuned)."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _
from pgvector.django import HnswIndex, VectorField

from adengine.conf import product_model_name
from adengine.ml.hybrid import MAX_FACTORS

from .events import HYBRID_DIMENSIONS, VECTOR_DIMENSIONS


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
    factors = VectorField(
        "collaborative factors",
        dimensions=MAX_FACTORS,
        null=True,
        blank=True,
        help_text="The product's factors in the active interest model (what shoppers buy together), zero-padded.",
    )
    fold_factors = VectorField(
        "fold-in factors",
        dimensions=MAX_FACTORS,
        null=True,
        blank=True,
        help_text="What a shopper's behaviour with this product adds to their collaborative vector (EASE models).",
    )
    popularity = models.FloatField(
        "popularity", default=0.0, help_text="Recency-weighted popularity in the active interest model, 0-1."
    )
    hybrid = VectorField(
        "hybrid vector",
        dimensions=HYBRID_DIMENSIONS,
        null=True,
        blank=True,
        help_text="Content, collaborative and popularity parts scaled by the active model's weights: "
        "its inner product with a shopper's hybrid vector is the blended score.",
    )
    hybrid_model = models.CharField(
        "hybrid model", max_length=80, blank=True, help_text="Interest model version of the hybrid vector."
    )

    class Meta:
        verbose_name = _("product vector")
        verbose_name_plural = _("product vectors")
        indexes = [
            HnswIndex(
                name="adengine_product_vec_hnsw",
                fields=["embedding"],
                m=16,
                ef_construction=64,
                opclasses=["vector_cosine_ops"],
            ),
            HnswIndex(
                name="adengine_product_hybrid_hnsw",
                fields=["hybrid"],
                m=16,
                ef_construction=64,
                opclasses=["vector_ip_ops"],
            ),
        ]

    def __str__(self) -> str:
        return f"vector of product {self.product_id}"


class QueryVector(models.Model):
    """A search text encoded once per encoder version, shared by every worker: the refresh encodes only new text."""

    encoder_version = models.CharField(
        "encoder version", max_length=80, help_text="Encoder version that produced the embedding."
    )
    query = models.CharField("query", max_length=200, help_text="The search text as the shopper typed it.")
    embedding = VectorField("embedding", dimensions=VECTOR_DIMENSIONS, help_text="Unit-length query embedding.")
    created_at = models.DateTimeField("created", auto_now_add=True, help_text="When it was encoded.")

    class Meta:
        verbose_name = _("query vector")
        verbose_name_plural = _("query vectors")
        constraints = [
            models.UniqueConstraint(fields=["encoder_version", "query"], name="adengine_query_vector_unique")
        ]

    def __str__(self) -> str:
        return self.query


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
        verbose_name = _("encoder version")
        verbose_name_plural = _("encoder versions")
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"], condition=models.Q(is_active=True), name="adengine_one_active_encoder"
            )
        ]

    def __str__(self) -> str:
        return self.version + (" (active)" if self.is_active else "")


class InterestModel(models.Model):
    """A fitted hybrid interest model: its weights, settings and the figures that chose it."""

    version = models.CharField("version", max_length=80, unique=True, help_text="e.g. im-20261201-1500.")
    is_active = models.BooleanField(
        "active", default=False, help_text="The model behind every hybrid vector; at most one is active."
    )
    weights = models.JSONField("weights", default=dict, help_text="Weight of each part: content, collab, popularity.")
    params = models.JSONField("settings", default=dict, help_text="Factors, regularisation, alpha, half-life.")
    spread = models.JSONField("spreads", default=dict, help_text="Score spread of each part (its unit).")
    content_mean = models.JSONField("content mean", default=list, help_text="Catalog mean vector (centring).")
    factor_scale = models.FloatField("factor scale", default=1.0, help_text="Largest product factor norm.")
    gram = models.JSONField("factor Gram matrix", default=list, help_text="YᵀY of the product factors (fold-in).")
    metrics = models.JSONField(
        "figures", default=dict, blank=True, help_text="Validation figures of each part, the blend and the live model."
    )
    notes = models.JSONField("notes", default=list, blank=True, help_text="Why a part was left out, and similar.")
    events = models.PositiveIntegerField("events", default=0, help_text="Behaviour events it was fitted on.")
    shoppers = models.PositiveIntegerField("shoppers", default=0, help_text="Shoppers it was fitted on.")
    decision = models.CharField("decision", max_length=300, blank=True, help_text="Why it was or was not switched on.")
    created_at = models.DateTimeField("created", auto_now_add=True, help_text="When it was trained.")

    class Meta:
        verbose_name = _("interest model")
        verbose_name_plural = _("interest models")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"], condition=models.Q(is_active=True), name="adengine_one_active_interest_model"
            )
        ]

    def __str__(self) -> str:
        w = ", ".join(f"{k} {v:.1f}" for k, v in (self.weights or {}).items())
        return f"{self.version} ({w})" + (" active" if self.is_active else "")


class InterestRefreshChunk(models.Model):
    """One task's share of an interest refresh: the stale shoppers whose ids lie in [first_shopper, last_shopper].

    The coordinator (``services.interests.plan_refresh``) splits the stale shoppers into chunks and queues one
    ``adengine.refresh_interest_chunk`` task per chunk; a chunk not finished within INTEREST_REFRESH_CLAIM_SECONDS
    no longer holds its shoppers back from the next plan.
    """

    first_shopper = models.BigIntegerField("first shopper id", help_text="Smallest shopper id of the chunk.")
    last_shopper = models.BigIntegerField("last shopper id", help_text="Largest shopper id of the chunk.")
    planned = models.PositiveIntegerField("planned", help_text="Stale shoppers in the range when it was planned.")
    queued_at = models.DateTimeField("queued", help_text="When the coordinator planned and queued it.")
    started_at = models.DateTimeField("started", null=True, blank=True, help_text="When a worker last started it.")
    finished_at = models.DateTimeField(
        "finished", null=True, blank=True, help_text="When a worker finished it; empty: queued, running or failed."
    )
    attempts = models.PositiveSmallIntegerField("attempts", default=0, help_text="How often a worker started it.")
    refreshed = models.PositiveIntegerField("refreshed", default=0, help_text="Interest vectors written.")
    cleared = models.PositiveIntegerField("cleared", default=0, help_text="Vectors cleared (no usable behaviour).")
    error = models.CharField("last error", max_length=300, blank=True, help_text="Why the last attempt failed.")

    class Meta:
        verbose_name = _("interest refresh chunk")
        verbose_name_plural = _("interest refresh chunks")
        ordering = ["-queued_at", "first_shopper"]
        indexes = [models.Index(fields=["finished_at", "queued_at"], name="adengine_refresh_chunk_open")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(first_shopper__lte=models.F("last_shopper")), name="adengine_refresh_chunk_range"
            )
        ]

    def __str__(self) -> str:
        return f"shoppers {self.first_shopper}-{self.last_shopper} ({'done' if self.finished_at else 'open'})"
