"""The strategy's state: how far the update has read the logs, and hourly statistics rolled up from them."""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.utils.translation import gettext_lazy as _

from .campaigns import Campaign, Placement
from .creatives import Creative


class StrategyState(models.Model):
    """One row: the log positions the strategy update has processed up to (its watermark)."""

    key = models.CharField("key", max_length=20, unique=True, default="default", help_text="Always 'default'.")
    impression_id = models.BigIntegerField("impressions up to", default=0, help_text="Last impression id read.")
    event_id = models.BigIntegerField("events up to", default=0, help_text="Last view/click event id read.")
    conversion_id = models.BigIntegerField("conversions up to", default=0, help_text="Last conversion id read.")
    updated_at = models.DateTimeField("last update", null=True, blank=True, help_text="When the update last ran.")
    last_result = models.JSONField("last result", default=dict, blank=True, help_text="What the last run did.")
    click_model_at = models.DateTimeField(
        "click model checked", null=True, blank=True, help_text="When the strategy last fitted (or tried) a model."
    )
    click_model_note = models.TextField(
        "click model note", blank=True, help_text="What the last fit did: switched, refused, or kept the prior."
    )

    class Meta:
        verbose_name = _("strategy state")
        verbose_name_plural = _("strategy states")

    def __str__(self) -> str:
        return f"strategy at impression {self.impression_id}, event {self.event_id}"


class HourlyStats(models.Model):
    """Counts per hour, campaign, asset and placement, added up by the strategy update (reports read these)."""

    hour = models.DateTimeField("hour", help_text="Start of the hour (shop time).")
    campaign = models.ForeignKey(
        Campaign, models.CASCADE, related_name="hourly_stats", verbose_name="campaign", help_text="Whose ads."
    )
    creative = models.ForeignKey(
        Creative,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="hourly_stats",
        verbose_name="headline",
        help_text="The headline asset.",
    )
    placement = models.ForeignKey(
        Placement, models.CASCADE, related_name="hourly_stats", verbose_name="placement", help_text="Where."
    )
    arm = models.CharField(
        "experiment arm", max_length=80, blank=True, default="", help_text="'<experiment id>:<arm>', or '' outside one."
    )
    impressions = models.PositiveIntegerField("impressions", default=0, help_text="Ads served.")
    views = models.PositiveIntegerField("views", default=0, help_text="Counted view beacons.")
    clicks = models.PositiveIntegerField("clicks", default=0, help_text="Counted clicks (no bots, no replays).")
    conversions = models.PositiveIntegerField("conversions", default=0, help_text="Orders credited to the clicks.")
    spend = models.DecimalField(
        "spend", max_digits=14, decimal_places=6, default=Decimal(0), help_text="What was billed."
    )
    revenue = models.DecimalField(
        "revenue", max_digits=14, decimal_places=2, default=Decimal(0), help_text="Revenue of the conversions."
    )

    class Meta:
        verbose_name = _("hourly statistics")
        verbose_name_plural = _("hourly statistics")
        constraints = [
            models.UniqueConstraint(
                fields=["hour", "campaign", "creative", "placement", "arm"],
                name="adengine_hourlystats_unique_arm",
                nulls_distinct=False,
            )
        ]
        indexes = [models.Index(fields=["campaign", "hour"], name="adengine_hourly_campaign")]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}h campaign {self.campaign_id}"


class DailyStats(models.Model):
    """The hourly roll-up summed by campaign, shop day and placement (a few hundred rows per campaign where the
    hourly one has thousands): the dashboard's whole-run totals and its last days read these. Written by the same
    statements as the hourly rows, in their transaction, so the two always agree (``services.strategy``)."""

    day = models.DateField("day", help_text="The shop's day (TIME_ZONE) of the hours summed.")
    campaign = models.ForeignKey(
        Campaign, models.CASCADE, related_name="daily_stats", verbose_name="campaign", help_text="Whose ads."
    )
    placement = models.ForeignKey(
        Placement, models.CASCADE, related_name="daily_stats", verbose_name="placement", help_text="Where."
    )
    impressions = models.PositiveBigIntegerField("impressions", default=0, help_text="Ads served.")
    views = models.PositiveBigIntegerField("views", default=0, help_text="Counted view beacons.")
    clicks = models.PositiveBigIntegerField("clicks", default=0, help_text="Counted clicks (no bots, no replays).")
    conversions = models.PositiveBigIntegerField("conversions", default=0, help_text="Orders credited to the clicks.")
    spend = models.DecimalField(
        "spend", max_digits=18, decimal_places=6, default=Decimal(0), help_text="What was billed."
    )
    revenue = models.DecimalField(
        "revenue", max_digits=18, decimal_places=2, default=Decimal(0), help_text="Revenue of the conversions."
    )

    class Meta:
        verbose_name = _("daily statistics")
        verbose_name_plural = _("daily statistics")
        constraints = [
            models.UniqueConstraint(fields=["campaign", "day", "placement"], name="adengine_dailystats_unique")
        ]

    def __str__(self) -> str:
        return f"{self.day} campaign {self.campaign_id}"


class ClickModel(models.Model):
    """A fitted contextual click model (``adengine.serving.click_model``), its off-policy evaluation against the
    live one, and whether it was switched on. At most one is live; serving reads the live one's weights."""

    class Status(models.TextChoices):
        LIVE = "live", "live"
        REFUSED = "refused", "refused by the gate"
        RETIRED = "retired", "retired (replaced)"

    version = models.CharField("version", max_length=40, unique=True, help_text="When it was fitted.")
    status = models.CharField(
        "status", max_length=10, choices=Status.choices, help_text="Live, refused by the OPE gate, or retired."
    )
    created_at = models.DateTimeField("fitted at", help_text="When the strategy update fitted it.")
    switched_at = models.DateTimeField("switched on at", null=True, blank=True, help_text="When it went live.")
    placements = models.JSONField("placements", default=list, help_text="Placement ids with a weight of their own.")
    mean = models.JSONField("weights", default=list, help_text="Posterior mean of each feature's weight.")
    cov = models.JSONField("covariance", default=list, help_text="Posterior covariance of the weights.")
    base_ctr = models.FloatField("base CTR", help_text="SERVING_BASE_CTR when it was fitted (centres the asset).")
    impressions = models.PositiveIntegerField("impressions fitted", default=0, help_text="Training records.")
    clicks = models.PositiveIntegerField("clicks fitted", default=0, help_text="Clicks among them.")
    evaluation = models.JSONField(
        "evaluation", default=dict, blank=True, help_text="The gate's estimates for it and the live model."
    )
    decision = models.TextField("decision", blank=True, help_text="Why it was switched on or not, in words.")

    class Meta:
        verbose_name = _("click model")
        verbose_name_plural = _("click models")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["status"], condition=models.Q(status="live"), name="adengine_clickmodel_one_live"
            )
        ]

    def __str__(self) -> str:
        return f"click model {self.version} ({self.get_status_display()})"
