"""What was served and what happened: impressions (with their propensities), views, clicks, conversions.

Impressions and ad events are PostgreSQL tables partitioned by day (``adengine.services.log_partitions``):
impressions by ``served_at``, events by their impression's ``impression_served_at``, so an impression and its
events live in partitions of the same day and are dropped together after ``LOG_RETENTION_DAYS``. A partitioned
table's primary and unique keys include the partition key: in the database the impression's primary key is
(id, served_at) and its one-time nonce is unique with its time (Django keeps ``id`` as the model's key; ids
come from one sequence, so they stay unique). Foreign keys into the log are kept by the services rather than the
database (``db_constraint=False``): a dropped day must not take the conversions credited to it along.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from adengine.conf import product_model_name

from .campaigns import Campaign, Placement
from .creatives import Creative
from .events import Shopper


class Impression(models.Model):
    """One ad served in one position of one decision, with what is needed to evaluate the policy offline."""

    nonce = models.UUIDField(
        "nonce",
        default=uuid.uuid4,
        editable=False,
        help_text="One-time key in its signed URLs (unique with served_at: the log is partitioned by day).",
    )
    decision_id = models.UUIDField("decision", help_text="The decision that chose it (with others).")
    # the log is written on every page view: only the indexes a query needs (listed in Meta)
    placement = models.ForeignKey(
        Placement,
        models.CASCADE,
        db_index=False,
        related_name="impressions",
        verbose_name="placement",
        help_text="Where it showed.",
    )
    campaign = models.ForeignKey(
        Campaign,
        models.CASCADE,
        db_index=False,  # (campaign, served_at) serves it
        related_name="impressions",
        verbose_name="campaign",
        help_text="Whose ad.",
    )
    creative = models.ForeignKey(
        Creative,
        models.SET_NULL,
        null=True,
        db_index=False,
        related_name="impressions",
        verbose_name="headline",
        help_text="The headline asset (the arm the policy chose).",
    )
    description = models.ForeignKey(
        Creative,
        models.SET_NULL,
        null=True,
        blank=True,
        db_index=False,
        related_name="+",
        verbose_name="description",
        help_text="The description asset shown with it.",
    )
    product = models.ForeignKey(
        product_model_name(),
        models.SET_NULL,
        null=True,
        blank=True,
        db_index=False,
        related_name="+",
        verbose_name="product",
        help_text="The promoted product shown, if any.",
    )
    shopper = models.ForeignKey(
        Shopper,
        models.SET_NULL,
        null=True,
        blank=True,
        db_index=False,  # (shopper, served_at) serves it
        related_name="impressions",
        verbose_name="shopper",
        help_text="Who saw it; emptied when the shopper is erased (the billing record stays).",
    )
    language = models.CharField("language", max_length=10, help_text="Language of the copy shown.")
    position = models.PositiveSmallIntegerField("position", default=0, help_text="0 is the first ad of the slot.")
    propensity = models.FloatField(
        "propensity", help_text="Probability that the policy put this ad in this position (for off-policy evaluation)."
    )
    predicted_ctr = models.FloatField("sampled CTR", help_text="The CTR the policy sampled for it.")
    relevance = models.FloatField("relevance", help_text="Fit to the shopper and page, 0..1.")
    value = models.FloatField("expected value", help_text="What the policy ranked by (money per impression).")
    candidates = models.PositiveIntegerField("candidates", help_text="How many ads competed.")
    personalised = models.BooleanField("personalised", help_text="The shopper's interests were used.")
    policy = models.CharField("policy", max_length=40, help_text="Name and version of the policy.")
    context = models.JSONField(
        "context", default=dict, blank=True, help_text="Page context and the features the policy saw."
    )
    landing_url = models.CharField(
        "landing URL", max_length=500, help_text="The only place its click URL redirects to."
    )
    served_at = models.DateTimeField("served", help_text="When it was chosen (the log's partition key).")
    viewed_at = models.DateTimeField("viewed", null=True, blank=True, help_text="When its view beacon arrived.")

    class Meta:
        verbose_name = _("impression")
        verbose_name_plural = _("impressions")
        constraints = [
            # the one-time nonce, unique with the partition key (its signed URLs carry both)
            models.UniqueConstraint(fields=["nonce", "served_at"], name="adengine_impression_nonce_once")
        ]
        # Every index on the log and who needs it (besides the primary key (id, served_at): the strategy's and the
        # live tail's id ranges, updates by id): the nonce's unique key (tracking URLs, the log writer's upsert);
        # (shopper, served_at): the frequency cap, attribution, a shopper's erasure; (campaign, served_at) with the
        # shopper, placement and headline in its leaves: reports' reach by day, placement or headline
        # (count(DISTINCT shopper) read from the index alone, no heap page of a closed day's partition once
        # vacuumed), the diagnosis, a campaign's deletion. Nothing reads by placement or asset alone.
        indexes = [
            models.Index(fields=["shopper", "served_at"], name="adengine_impr_shopper_time"),
            models.Index(
                fields=["campaign", "served_at"],
                include=["shopper", "placement", "creative"],
                name="adengine_impr_campaign_time",
            ),
        ]

    def __str__(self) -> str:
        return f"impression {self.pk} of {self.campaign_id} at {self.placement_id}"

    @property
    def tier(self) -> str:
        return self.campaign.tier


class AdEvent(models.Model):
    """A view beacon or a click on an impression, with whether it was counted and billed."""

    class Kind(models.TextChoices):
        VIEW = "view", "view"
        CLICK = "click", "click"

    class Status(models.TextChoices):
        ACCEPTED = "accepted", "accepted (counted; billed if priced)"
        OVER_BUDGET = "over_budget", "counted, not billed: budget spent"
        DUPLICATE = "duplicate", "replayed nonce: not counted, not billed"
        BOT = "bot", "known bot or crawler: not counted, not billed"
        RATE_LIMITED = "rate_limited", "over the per-IP limit: not counted, not billed"

    COUNTED = (Status.ACCEPTED, Status.OVER_BUDGET)

    impression = models.ForeignKey(
        Impression,
        models.CASCADE,
        db_constraint=False,  # kept by the tracking service: the log's days are dropped, not its rows deleted
        related_name="events",
        verbose_name="impression",
        help_text="What was seen.",
    )
    impression_served_at = models.DateTimeField(
        "impression served",
        help_text="When its impression was served (copied): the events' partition key, the day of its impression.",
    )
    campaign = models.ForeignKey(
        Campaign,
        models.CASCADE,
        db_index=False,  # (campaign, kind, occurred_at) serves it
        related_name="ad_events",
        verbose_name="campaign",
        help_text="Whose ad (copied).",
    )
    kind = models.CharField("kind", max_length=5, choices=Kind.choices, help_text="View or click.")
    status = models.CharField("status", max_length=12, choices=Status.choices, help_text="Counted, billed or why not.")
    charge = models.DecimalField(
        "charge", max_digits=12, decimal_places=6, default=Decimal("0"), help_text="What was billed for it."
    )
    ip = models.GenericIPAddressField(
        "IP (truncated)", null=True, blank=True, help_text="The client's network: IPv4 /24 or IPv6 /48, never whole."
    )
    user_agent = models.CharField("user agent", max_length=200, blank=True, help_text="Truncated user agent.")
    occurred_at = models.DateTimeField("when", db_index=True, help_text="When it arrived.")

    class Meta:
        verbose_name = _("ad event")
        verbose_name_plural = _("ad events")
        constraints = [
            # The one-time nonce: at most one counted view and one counted click per impression.
            models.UniqueConstraint(
                fields=["impression", "impression_served_at", "kind"],
                condition=Q(status__in=["accepted", "over_budget"]),
                name="adengine_adevent_once",
            )
        ]
        indexes = [
            models.Index(fields=["campaign", "kind", "occurred_at"], name="adengine_adevent_campaign"),
        ]  # (ip, kind, occurred_at) went with 0023: nothing read it since the per-IP limits count in RateCounter

    def __str__(self) -> str:
        return f"{self.kind} on {self.impression_id}: {self.status}"

    def save(self, *args, **kwargs) -> None:
        if self.impression_served_at is None and self.impression_id is not None:
            self.impression_served_at = self.impression.served_at  # the partition key comes with the impression
        super().save(*args, **kwargs)


class Conversion(models.Model):
    """An order attributed to the last ad click of its shopper within the attribution window."""

    order_key = models.CharField("order", max_length=120, unique=True, help_text="The host shop's order key.")
    campaign = models.ForeignKey(
        Campaign, models.CASCADE, related_name="conversions", verbose_name="campaign", help_text="Credited campaign."
    )
    # no database constraints into the log: a conversion outlives the day of its click (LOG_RETENTION_DAYS)
    impression = models.ForeignKey(
        Impression,
        models.CASCADE,
        db_constraint=False,
        related_name="conversions",
        verbose_name="impression",
        help_text="Clicked ad.",
    )
    click = models.ForeignKey(
        AdEvent,
        models.CASCADE,
        db_constraint=False,
        related_name="conversions",
        verbose_name="click",
        help_text="The credited click.",
    )
    shopper = models.ForeignKey(
        Shopper,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="conversions",
        verbose_name="shopper",
        help_text="Who ordered; emptied on erasure.",
    )
    revenue = models.DecimalField(
        "revenue", max_digits=12, decimal_places=2, help_text="The order's revenue as credited now (0 once reversed)."
    )
    ordered_at = models.DateTimeField("ordered", db_index=True, help_text="When the order was placed.")
    created_at = models.DateTimeField("recorded", auto_now_add=True, help_text="When it was attributed.")
    reversed_at = models.DateTimeField(
        "reversed", null=True, blank=True, help_text="When the order was cancelled or refunded (no longer credited)."
    )

    class Meta:
        verbose_name = _("conversion")
        verbose_name_plural = _("conversions")

    def __str__(self) -> str:
        return f"order {self.order_key} -> campaign {self.campaign_id}"


class RateCounter(models.Model):
    """Events per client network and minute, counted atomically (one upsert per event) for the per-IP limits.

    An UNLOGGED table: a crash resets the counters (a minute of flood protection), never the billing.
    """

    key = models.CharField("key", max_length=64, help_text="Event kind and truncated IP.")
    minute = models.DateTimeField("minute", help_text="Start of the minute counted.")
    count = models.PositiveIntegerField("count", default=0, help_text="Events from the key in that minute.")

    class Meta:
        verbose_name = _("rate counter")
        verbose_name_plural = _("rate counters")
        constraints = [models.UniqueConstraint(fields=["key", "minute"], name="adengine_ratecounter_once")]
        indexes = [models.Index(fields=["minute"], name="adengine_ratecounter_minute")]

    def __str__(self) -> str:
        return f"{self.key} at {self.minute:%H:%M}: {self.count}"


class CapCounter(models.Model):
    """A shopper's impressions of a frequency-capped campaign on one day, shared by every web process.

    Each decision reserves its capped ads here with one conditional upsert (``serving.counters``) before it shows
    them, so two web servers can never both show the last impression a cap allows. An UNLOGGED table: a crash
    resets the counts, and the impression log (which every process also reads) still bounds them.
    """

    shopper_id = models.BigIntegerField("shopper", help_text="The shopper's adengine id.")
    campaign_id = models.BigIntegerField("campaign", help_text="The capped campaign's id.")
    day = models.DateField("day", help_text="The shop's date.")
    count = models.PositiveIntegerField("count", default=0, help_text="Impressions reserved that day.")

    class Meta:
        verbose_name = _("frequency-cap counter")
        verbose_name_plural = _("frequency-cap counters")
        constraints = [
            models.UniqueConstraint(fields=["shopper_id", "day", "campaign_id"], name="adengine_capcounter_once")
        ]
        indexes = [models.Index(fields=["day"], name="adengine_capcounter_day")]

    def __str__(self) -> str:
        return f"shopper {self.shopper_id}, campaign {self.campaign_id} on {self.day}: {self.count}"
