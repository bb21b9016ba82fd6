"""Creatives as assets (responsive-search-ad style) and the requests that generate them."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from pgvector.django import VectorField

from .campaigns import Campaign
from .events import VECTOR_DIMENSIONS


class GenerationRequest(models.Model):
    """One request for generated copy: idempotent on its id, with status and progress."""

    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        DONE = "done", "done"
        FAILED = "failed", "failed"

    id = models.UUIDField(
        "request id",
        primary_key=True,
        default=uuid.uuid4,
        editable=False,
        help_text="Idempotency key: running the same request twice writes its assets once.",
    )
    campaign = models.ForeignKey(
        Campaign,
        models.CASCADE,
        related_name="generation_requests",
        verbose_name="campaign",
        help_text="Whose copy is written.",
    )
    language = models.CharField("language", max_length=10, help_text="Language of the copy.")
    n = models.PositiveSmallIntegerField("variants", default=8, help_text="How many variants to write.")
    seed = models.PositiveIntegerField("seed", default=0, help_text="Sampling seed, for reproducibility.")
    status = models.CharField(
        "status", max_length=10, choices=Status.choices, default=Status.QUEUED, help_text="Where the request is."
    )
    progress = models.PositiveSmallIntegerField("progress", default=0, help_text="Variants written so far.")
    error = models.TextField("error", blank=True, help_text="Why the request failed.")
    model_name = models.CharField("model", max_length=120, blank=True, help_text="The copywriter that wrote it.")
    stats = models.JSONField(
        "statistics", default=dict, blank=True, help_text="Tokens, seconds, passed and rejected counts."
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name="requested by",
        help_text="Who asked.",
    )
    created_at = models.DateTimeField("created", auto_now_add=True, help_text="When it was asked for.")
    started_at = models.DateTimeField(
        "started",
        null=True,
        blank=True,
        help_text="When a worker last started writing it: the queue's estimates learn from started to finished.",
    )
    finished_at = models.DateTimeField("finished", null=True, blank=True, help_text="When it ended.")
    heartbeat_at = models.DateTimeField(
        "last sign of life",
        null=True,
        blank=True,
        help_text="When it was last queued or, while it runs, when its worker last said it is alive; the sweeper "
        "queues again or fails a request whose worker went quiet.",
    )
    queued = models.PositiveSmallIntegerField(
        "times queued", default=0, help_text="How often a message for it was sent to the broker."
    )
    attempts = models.PositiveSmallIntegerField(
        "attempts", default=0, help_text="How often a worker started it (more than once: a worker died on it)."
    )
    task_id = models.CharField("task id", max_length=255, blank=True, help_text="The Celery task that started it last.")

    class Meta:
        verbose_name = _("copy generation request")
        verbose_name_plural = _("copy generation requests")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="adengine_genreq_sweep")]

    def __str__(self) -> str:
        return f"{self.campaign} / {self.language} x{self.n} ({self.status})"


class Creative(models.Model):
    """One headline or description asset of a campaign in one language."""

    class AssetType(models.TextChoices):
        HEADLINE = "headline", "headline"
        DESCRIPTION = "description", "description"

    class Source(models.TextChoices):
        GENERATED = "generated", "generated"
        HUMAN = "human", "written by a person"

    class Status(models.TextChoices):
        DRAFT = "draft", "draft"
        APPROVED = "approved", "approved"
        REJECTED = "rejected", "rejected"
        PAUSED = "paused", "paused"

    class Label(models.TextChoices):
        PENDING = "PENDING", "pending"
        LEARNING = "LEARNING", "learning"
        LOW = "LOW", "low"
        GOOD = "GOOD", "good"
        BEST = "BEST", "best"

    campaign = models.ForeignKey(
        Campaign,
        models.CASCADE,
        related_name="creatives",
        verbose_name="campaign",
        help_text="The campaign the asset belongs to.",
    )
    asset_type = models.CharField(
        "type", max_length=12, choices=AssetType.choices, help_text="Headline or description."
    )
    language = models.CharField("language", max_length=10, help_text="Language of the text.")
    text = models.CharField("text", max_length=300, help_text="The copy (untrusted: always escaped when shown).")
    source = models.CharField(
        "source",
        max_length=10,
        choices=Source.choices,
        default=Source.HUMAN,
        help_text="Generated by a model or written by a person.",
    )
    model_name = models.CharField("model", max_length=120, blank=True, help_text="Model that wrote it.")
    prompt_version = models.CharField("prompt version", max_length=40, blank=True, help_text="Prompt template used.")
    request = models.ForeignKey(
        GenerationRequest,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="creatives",
        verbose_name="request",
        help_text="The generation request that produced it.",
    )
    status = models.CharField(
        "status", max_length=10, choices=Status.choices, default=Status.DRAFT, help_text="Only approved assets run."
    )
    rule_results = models.JSONField(
        "rule results", default=list, blank=True, help_text="Each advertising rule's verdict and reason."
    )
    passes_rules = models.BooleanField("passes the rules", default=False, help_text="All rules passed.")
    label = models.CharField(
        "performance",
        max_length=10,
        choices=Label.choices,
        default=Label.PENDING,
        help_text="Filled in by the strategy: LEARNING until enough impressions.",
    )
    embedding = VectorField(
        "embedding",
        dimensions=VECTOR_DIMENSIONS,
        null=True,
        blank=True,
        editable=False,
        help_text="Passage embedding, for near-duplicates and audience fit.",
    )
    audience_fit = models.FloatField(
        "audience fit", null=True, blank=True, help_text="Cosine similarity to the audience's interest centroid."
    )
    product_fit = models.FloatField(
        "product fit", null=True, blank=True, help_text="Mean cosine similarity to the promoted products."
    )
    score = models.FloatField(
        "prior score", null=True, blank=True, help_text="Audience-fit ranking score; the prior serving starts from."
    )
    landing_url = models.CharField(
        "landing URL",
        max_length=500,
        blank=True,
        help_text="Where a click on this asset goes (empty: the promoted product's page or the campaign's URL).",
    )
    ctr_alpha = models.FloatField(
        "CTR posterior alpha",
        null=True,
        blank=True,
        help_text="Beta posterior of the click rate (alpha); empty: the prior from the audience-fit score.",
    )
    ctr_beta = models.FloatField(
        "CTR posterior beta", null=True, blank=True, help_text="Beta posterior of the click rate (beta)."
    )
    served = models.PositiveIntegerField(
        "impressions", default=0, help_text="Times served so far (as counted by the strategy update)."
    )
    clicked = models.PositiveIntegerField("clicks", default=0, help_text="Counted clicks so far (strategy update).")
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name="reviewed by",
        help_text="Who approved or rejected.",
    )
    created_at = models.DateTimeField("created", auto_now_add=True, help_text="When it was written.")
    updated_at = models.DateTimeField("updated", auto_now=True, help_text="When it last changed.")

    class Meta:
        verbose_name = _("creative asset")
        verbose_name_plural = _("creative assets")
        ordering = ["campaign", "language", "asset_type", "-score"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "asset_type", "language", "text"], name="adengine_creative_unique_text"
            ),
        ]
        indexes = [models.Index(fields=["campaign", "status"], name="adengine_creative_status")]

    def __str__(self) -> str:
        return f"[{self.language} {self.asset_type}] {self.text}"

    @property
    def rejection_reasons(self) -> list[str]:
        return [f"{r['rule']}: {r['reason']}" for r in self.rule_results if not r.get("passed")]


class CopywriterModel(models.Model):
    """A fine-tuned version of the local copywriter: a LoRA adapter on the configured base model."""

    version = models.CharField(
        "version", max_length=80, unique=True, help_text="Name of this copywriter version, e.g. copy-20261201-1015."
    )
    path = models.CharField("adapter folder", max_length=500, help_text="The LoRA adapter's folder on disk.")
    base = models.CharField(
        "base model", max_length=200, help_text="ADENGINE['COPYWRITER']['MODEL'] it was trained on."
    )
    is_active = models.BooleanField(
        "active", default=False, help_text="Writes the shop's copy when the base model is the configured one."
    )
    metrics = models.JSONField(
        "evaluation", default=dict, blank=True, help_text="Training record and the held-out comparison with the base."
    )
    decision = models.TextField("decision", blank=True, help_text="Why it was or was not activated, in words.")
    created_at = models.DateTimeField("created", auto_now_add=True, help_text="When it was trained.")

    class Meta:
        verbose_name = _("copywriter version")
        verbose_name_plural = _("copywriter versions")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"], condition=models.Q(is_active=True), name="adengine_one_active_copywriter"
            )
        ]

    def __str__(self) -> str:
        return self.version + (" (active)" if self.is_active else "")
