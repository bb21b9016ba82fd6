"""Advertisers and campaigns: the fields that targeting needs (serving and creatives extend them)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from pgvector.django import VectorField

from adengine.conf import product_model_name

from .events import VECTOR_DIMENSIONS


class Advertiser(models.Model):
    """A brand or seller that runs campaigns in the shop."""

    name = models.CharField("name", max_length=120, unique=True, help_text="Shown to shoppers as the sponsor.")
    managers = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="adengine_advertisers",
        verbose_name="managers",
        help_text="Users who may manage this advertiser's campaigns.",
    )
    created_at = models.DateTimeField("created", auto_now_add=True, help_text="When it was created.")

    class Meta:
        verbose_name = "advertiser"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Campaign(models.Model):
    """An advertising campaign and its targeting."""

    class Status(models.TextChoices):
        DRAFT = "draft", "draft"
        ACTIVE = "active", "active"
        PAUSED = "paused", "paused"
        ENDED = "ended", "ended"

    advertiser = models.ForeignKey(
        Advertiser,
        models.CASCADE,
        related_name="campaigns",
        verbose_name="advertiser",
        help_text="Who runs and pays for the campaign.",
    )
    name = models.CharField("name", max_length=160, help_text="Internal name of the campaign.")
    status = models.CharField(
        "status", max_length=10, choices=Status.choices, default=Status.DRAFT, help_text="Delivery status."
    )
    description = models.TextField(
        "target description",
        blank=True,
        help_text="Who the campaign is for, in words; embedded with the keywords and products to find its audience.",
    )
    keywords = ArrayField(
        models.CharField(max_length=60),
        default=list,
        blank=True,
        verbose_name="keywords",
        help_text="Search terms and themes of the campaign, in any language.",
    )
    languages = ArrayField(
        models.CharField(max_length=10),
        default=list,
        blank=True,
        verbose_name="languages",
        help_text="Languages of the campaign's ad copy (e.g. en, zh).",
    )
    brand_voice = models.TextField(
        "brand voice", blank=True, help_text="How the advertiser speaks, for the copywriter (e.g. 'warm, concise')."
    )
    promoted_products = models.ManyToManyField(
        product_model_name(),
        blank=True,
        related_name="+",
        verbose_name="promoted products",
        help_text="The host shop's products this campaign advertises.",
    )
    target_vector = VectorField(
        "target vector",
        dimensions=VECTOR_DIMENSIONS,
        null=True,
        blank=True,
        editable=False,
        help_text="Embedding of description, keywords and promoted products (computed).",
    )
    target_model = models.CharField(
        "target model",
        max_length=80,
        blank=True,
        editable=False,
        help_text="Encoder version and inputs the target vector was computed from.",
    )
    created_at = models.DateTimeField("created", auto_now_add=True, help_text="When it was created.")
    updated_at = models.DateTimeField("updated", auto_now=True, help_text="When it last changed.")

    class Meta:
        verbose_name = "campaign"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.advertiser})"
