"""Shoppers (a registered user or an anonymous session) and their behaviour log."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.indexes import OpClass
from django.db import models
from django.db.models import Q
from django.db.models.functions import Cast
from django.utils.translation import gettext_lazy as _
from pgvector.django import HalfVectorField, HnswIndex, VectorField

from adengine.conf import product_model_name
from adengine.conf import settings as ad_settings
from adengine.ml.hybrid import hybrid_dimensions

VECTOR_DIMENSIONS = 384
HYBRID_DIMENSIONS = hybrid_dimensions(VECTOR_DIMENSIONS)
SHOPPER_HNSW_M = 24
SHOPPER_HNSW_EF_CONSTRUCTION = 128


def half_precision(field: str, dimensions: int) -> Cast:
    """``field::halfvec(dimensions)``: what the half-precision HNSW indexes are built on and queries order by."""
    return Cast(field, HalfVectorField(dimensions=dimensions))


def _personalisation_default() -> bool:
    return bool(ad_settings.PERSONALISATION_DEFAULT)


class Shopper(models.Model):
    """A person adengine personalises for: a registered user or one anonymous browser session."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        models.CASCADE,
        null=True,
        blank=True,
        related_name="adengine_shopper",
        verbose_name="user",
        help_text="The registered customer; empty for an anonymous session.",
    )
    anonymous_key = models.CharField(
        "anonymous key",
        max_length=32,
        null=True,
        blank=True,
        unique=True,
        help_text="Random id kept in an anonymous visitor's session (not the session key, which rotates).",
    )
    personalisation = models.BooleanField(
        "personalisation allowed",
        default=_personalisation_default,
        help_text="Consent to personalised ads. Off: no behaviour kept for interests, no interest vector.",
    )
    created_at = models.DateTimeField("created", auto_now_add=True, help_text="First seen.")
    # Not indexed, on purpose: every behaviour event moves it, and an update that changes no indexed column can be
    # made in place (a HOT update, the table's fillfactor leaving room: migration 0026); otherwise each event would
    # insert the row again into every index of the table, both HNSW graphs included (milliseconds each at a
    # million shoppers). The refresh finds stale shoppers by primary key ranges, not by this column.
    last_event_at = models.DateTimeField(
        "last behaviour",
        null=True,
        blank=True,
        help_text="Time of the newest behaviour event; newer than 'interests computed from' means stale.",
    )
    interest_vector = VectorField(
        "interest vector",
        dimensions=VECTOR_DIMENSIONS,
        null=True,
        blank=True,
        help_text="Unit-length embedding of the shopper's interests (cosine space).",
    )
    interest_source_at = models.DateTimeField(
        "interests computed from",
        null=True,
        blank=True,
        help_text="last_event_at as it was when the interest vector was computed.",
    )
    interest_model = models.CharField(
        "interest model",
        max_length=80,
        blank=True,
        help_text="Encoder version and method the interest vector was computed with.",
    )
    interest_hybrid = VectorField(
        "hybrid interest vector",
        dimensions=HYBRID_DIMENSIONS,
        null=True,
        blank=True,
        help_text="Content, collaborative and popularity parts of the shopper's interests under the active interest "
        "model; its inner product with a product's hybrid vector ranks products.",
    )
    interest_hybrid_model = models.CharField(
        "hybrid interest model", max_length=80, blank=True, help_text="Interest model version of the hybrid vector."
    )
    interest_events = models.PositiveIntegerField(
        "events used", default=0, help_text="How many behaviour events the interest vector summarises."
    )
    interest_updated_at = models.DateTimeField(
        "interests updated", null=True, blank=True, help_text="When the interest vector was written."
    )

    class Meta:
        verbose_name = _("shopper")
        verbose_name_plural = _("shoppers")
        constraints = [
            models.CheckConstraint(
                condition=Q(user__isnull=False, anonymous_key__isnull=True)
                | Q(user__isnull=True, anonymous_key__isnull=False),
                name="adengine_shopper_user_xor_anonymous",
            )
        ]
        # half-precision expression indexes: half the size of the vectors' own, faster to build and to search;
        # the audience query re-ranks their candidates by the full-precision vectors (selectors/audience.py).
        # m and ef_construction: the densest graph that keeps recall@10 >= 0.95 at 1,000,000 shoppers within
        # the latency target (BENCHMARKS.md, "Nearest-neighbour search")
        indexes = [
            HnswIndex(
                OpClass(half_precision("interest_vector", VECTOR_DIMENSIONS), "halfvec_cosine_ops"),
                name="adengine_shopper_interest_half",
                m=SHOPPER_HNSW_M,
                ef_construction=SHOPPER_HNSW_EF_CONSTRUCTION,
            ),
            HnswIndex(
                OpClass(half_precision("interest_hybrid", HYBRID_DIMENSIONS), "halfvec_ip_ops"),
                name="adengine_shopper_hybrid_half",
                m=SHOPPER_HNSW_M,
                ef_construction=SHOPPER_HNSW_EF_CONSTRUCTION,
            ),
        ]

    def __str__(self) -> str:
        if self.user_id:
            return f"user {self.user_id}"
        return f"anonymous {self.anonymous_key[:8]}"

    @property
    def is_stale(self) -> bool:
        """True when behaviour arrived after the interest vector was computed."""
        return self.last_event_at is not None and (
            self.interest_source_at is None or self.last_event_at > self.interest_source_at
        )


class BehaviourEvent(models.Model):
    """One thing a shopper did: searched, viewed, carted or bought."""

    class Kind(models.TextChoices):
        SEARCH = "search", "search"
        VIEW = "view", "product view"
        CART = "cart", "add to cart"
        PURCHASE = "purchase", "purchase"

    class Source(models.TextChoices):
        TAG = "tag", "template tag"
        API = "api", "REST API"
        ORDER = "order", "order signal"
        IMPORT = "import", "CSV import"
        SIGNAL = "signal", "the shop's own signal (a cart, say)"

    shopper = models.ForeignKey(
        Shopper,
        models.CASCADE,
        related_name="events",
        verbose_name="shopper",
        help_text="Who did it; deleting the shopper deletes their behaviour.",
    )
    kind = models.CharField("kind", max_length=10, choices=Kind.choices, help_text="What happened.")
    product = models.ForeignKey(
        product_model_name(),
        models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name="product",
        help_text="The product viewed, carted or bought (empty for a search).",
    )
    query = models.CharField(
        "search query",
        max_length=200,
        blank=True,
        help_text="The search text, with e-mail addresses and phone numbers removed.",
    )
    quantity = models.PositiveIntegerField("quantity", default=1, help_text="Units carted or bought.")
    revenue = models.DecimalField(
        "revenue",
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="For a purchase: what the line earned.",
    )
    occurred_at = models.DateTimeField("when", db_index=True, help_text="When it happened.")
    source = models.CharField("source", max_length=10, choices=Source.choices, help_text="How adengine learned of it.")
    dedupe_key = models.CharField(
        "idempotency key",
        max_length=120,
        null=True,
        blank=True,
        unique=True,
        help_text="Makes re-recording the same event (an order saved twice, an import run twice) a no-op.",
    )

    class Meta:
        verbose_name = _("behaviour event")
        verbose_name_plural = _("behaviour events")
        ordering = ["-occurred_at"]
        indexes = [
            models.Index(fields=["shopper", "occurred_at"], name="adengine_event_shopper_time"),
            models.Index(fields=["kind", "occurred_at"], name="adengine_event_kind_time"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind="search", query__gt="") | (~Q(kind="search") & Q(product__isnull=False)),
                name="adengine_event_has_subject",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} by {self.shopper_id} at {self.occurred_at:%Y-%m-%d %H:%M}"
