"""Advertisers and campaigns: targeting, pricing, budgets, schedule and caps."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _
from pgvector.django import VectorField

from adengine.conf import product_model_name
from adengine.validators import validate_landing_url

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
        verbose_name = _("advertiser")
        verbose_name_plural = _("advertisers")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Campaign(models.Model):
    """An advertising campaign: its targeting, pricing, budget, schedule and frequency cap."""

    class Status(models.TextChoices):
        DRAFT = "draft", "draft"
        ACTIVE = "active", "active"
        PAUSED = "paused", "paused"
        ENDED = "ended", "ended"

    class Objective(models.TextChoices):
        CLICKS = "clicks", "clicks"
        CONVERSIONS = "conversions", "conversions"
        ROI = "roi", "return on ad spend"

    class Pricing(models.TextChoices):
        CPC = "cpc", "cost per click"
        CPM = "cpm", "cost per thousand views"

    class Tier(models.TextChoices):
        SPONSORED = "sponsored", "sponsored"
        HOUSE = "house", "house ad (fills empty slots, never billed)"

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
    objective = models.CharField(
        "objective",
        max_length=12,
        choices=Objective.choices,
        default=Objective.CLICKS,
        help_text="What delivery optimises: clicks, conversions, or revenue per spend (ROI).",
    )
    pricing = models.CharField(
        "pricing", max_length=3, choices=Pricing.choices, default=Pricing.CPC, help_text="What is billed."
    )
    bid = models.DecimalField(
        "bid",
        max_digits=10,
        decimal_places=4,
        default=Decimal("0.50"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text="Price per click (CPC) or per thousand views (CPM), in the shop's currency.",
    )
    total_budget = models.DecimalField(
        "total budget",
        max_digits=12,
        decimal_places=4,
        default=Decimal("100"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text="Never spent beyond: charging is atomic, so concurrent clicks cannot overspend.",
    )
    daily_budget = models.DecimalField(
        "daily budget",
        max_digits=12,
        decimal_places=4,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0"))],
        help_text="At most this much per day (the shop's time zone); pacing spreads it over the day. Empty: none.",
    )
    spent = models.DecimalField(
        "spent",
        max_digits=12,
        decimal_places=4,
        default=Decimal("0"),
        editable=False,
        help_text="Charged so far (billed views and clicks).",
    )
    starts_at = models.DateTimeField("starts", null=True, blank=True, help_text="Delivery starts (empty: now).")
    ends_at = models.DateTimeField("ends", null=True, blank=True, help_text="Delivery ends (empty: open-ended).")
    tier = models.CharField(
        "tier",
        max_length=10,
        choices=Tier.choices,
        default=Tier.SPONSORED,
        help_text="Sponsored ads compete by value; house ads only fill slots no sponsored ad wants.",
    )
    frequency_cap = models.PositiveIntegerField(
        "frequency cap",
        default=0,
        help_text="Most impressions per shopper per day (0: no cap).",
    )
    categories = ArrayField(
        models.CharField(max_length=120),
        default=list,
        blank=True,
        verbose_name="categories",
        help_text="Category keys of the host shop whose pages and products this campaign targets.",
    )
    audience_min_similarity = models.FloatField(
        "audience threshold",
        null=True,
        blank=True,
        help_text="Personalised delivery only to shoppers whose interests are at least this cosine-similar "
        "to the target (empty: anyone, ranked by fit).",
    )
    landing_url = models.CharField(
        "landing URL",
        max_length=500,
        blank=True,
        help_text="Where a click goes when the ad shows no product: a path on the shop, or an https URL on "
        "the shop's hosts or ADENGINE['LANDING_HOSTS'].",
        validators=[validate_landing_url],
    )
    placements = models.ManyToManyField(
        "adengine.Placement",
        blank=True,
        related_name="campaigns",
        verbose_name="placements",
        help_text="Slots the campaign may appear in (empty: all).",
    )
    cvr_alpha = models.FloatField(
        "conversion posterior alpha", default=1.0, help_text="Beta posterior of conversions per click (alpha)."
    )
    cvr_beta = models.FloatField(
        "conversion posterior beta", default=19.0, help_text="Beta posterior of conversions per click (beta)."
    )
    pacing_rate = models.FloatField(
        "pacing rate",
        default=1.0,
        editable=False,
        help_text="Below 1 when the campaign spends ahead of its daily plan: its ads rank lower (strategy update).",
    )
    placement_weights = models.JSONField(
        "placement weights",
        default=dict,
        blank=True,
        editable=False,
        help_text="Placement key -> how much more (or less) its delivery is worth, from return on spend there "
        "over the last 7 days (strategy update).",
    )
    audience_weights = models.JSONField(
        "audience weights",
        default=dict,
        blank=True,
        editable=False,
        help_text="'close' (shoppers whose interests fit the campaign: relevance >= 0.75) and 'broad' (the rest) -> "
        "how much more (or less) delivery to each is worth, from their return over the last 7 days "
        "(strategy update).",
    )
    clicked = models.PositiveIntegerField("clicks", default=0, help_text="Counted clicks (strategy update).")
    converted = models.PositiveIntegerField("conversions", default=0, help_text="Attributed orders (strategy update).")
    attributed_revenue = models.DecimalField(
        "revenue",
        max_digits=14,
        decimal_places=2,
        default=Decimal(0),
        help_text="Attributed revenue (strategy update).",
    )
    revenue_per_conversion = models.FloatField(
        "revenue per conversion",
        null=True,
        blank=True,
        help_text="Mean order revenue attributed per conversion (filled by the strategy update).",
    )
    created_at = models.DateTimeField("created", auto_now_add=True, help_text="When it was created.")
    updated_at = models.DateTimeField("updated", auto_now=True, help_text="When it last changed.")

    class Meta:
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=models.Q(spent__gte=0), name="adengine_campaign_spent_nonnegative"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.advertiser})"

    def clean(self) -> None:
        """Rules across fields, each with a message on the field to fix; the admin form and ``load_campaigns``
        (``full_clean``) both run them."""
        from adengine.conf import settings as ad_settings

        errors: dict[str, str] = {}
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            errors["ends_at"] = (
                f"The end ({self.ends_at:%Y-%m-%d %H:%M}) must be after the start ({self.starts_at:%Y-%m-%d %H:%M})."
            )
        if self.daily_budget is not None and self.total_budget is not None and self.daily_budget > self.total_budget:
            errors["daily_budget"] = (
                f"The daily budget ({self.daily_budget:.2f}) is more than the total budget "
                f"({self.total_budget:.2f}); lower it or raise the total budget."
            )
        if self.total_budget is not None and self.spent and self.total_budget < self.spent:
            errors["total_budget"] = (
                f"The total budget ({self.total_budget:.2f}) is below what the campaign has spent already "
                f"({self.spent:.2f})."
            )
        if self.tier == self.Tier.SPONSORED and self.bid is not None and self.bid <= 0:
            errors["bid"] = "A sponsored campaign's bid must be more than 0 (only house ads run unbilled)."
        known = list(ad_settings.LANGUAGES)
        unknown = [lang for lang in self.languages or [] if lang not in known]
        if unknown:
            errors["languages"] = (
                f"Unknown language(s) {', '.join(unknown)}: this shop's ad copy is written in {', '.join(known)} "
                "(ADENGINE['LANGUAGES'])."
            )
        if any(not (k or "").strip() for k in self.keywords or []):
            errors["keywords"] = "A keyword is empty; remove it."
        if self.audience_min_similarity is not None and not -1 <= self.audience_min_similarity <= 1:
            errors["audience_min_similarity"] = (
                "The audience threshold is a cosine similarity between -1 and 1 (0.3 to 0.6 are useful; empty: "
                "anyone, ranked by fit)."
            )
        if errors:
            raise ValidationError(errors)


class CampaignDay(models.Model):
    """A campaign's spend on one day: the row that daily budgets are charged against atomically."""

    campaign = models.ForeignKey(
        Campaign, models.CASCADE, related_name="days", verbose_name="campaign", help_text="Whose spend."
    )
    day = models.DateField("day", help_text="The day, in the shop's time zone.")
    spent = models.DecimalField(
        "spent", max_digits=12, decimal_places=4, default=Decimal("0"), help_text="Charged on that day."
    )

    class Meta:
        verbose_name = _("campaign day")
        verbose_name_plural = _("campaign days")
        constraints = [models.UniqueConstraint(fields=["campaign", "day"], name="adengine_campaignday_unique")]

    def __str__(self) -> str:
        return f"{self.campaign_id} {self.day}: {self.spent}"


class Placement(models.Model):
    """A slot on the shop's pages or apps where ads appear."""

    class Format(models.TextChoices):
        TEXT = "text", "text ad"
        PRODUCT = "product", "product card"
        BANNER = "banner", "banner"

    key = models.SlugField("key", max_length=60, unique=True, help_text="Used by {% ad_slot %} and the API.")
    name = models.CharField("name", max_length=120, help_text="Where it is, for people.")
    format = models.CharField(
        "format", max_length=10, choices=Format.choices, default=Format.TEXT, help_text="How its ads look."
    )
    max_ads = models.PositiveSmallIntegerField(
        "ads shown", default=1, validators=[MinValueValidator(1)], help_text="How many ads the slot shows."
    )
    allow_house_ads = models.BooleanField(
        "house ads fill it", default=True, help_text="Fill empty positions with house ads."
    )
    is_active = models.BooleanField("active", default=True, help_text="An inactive slot shows nothing.")
    relevance_floor = models.FloatField(
        "relevance floor",
        null=True,
        blank=True,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Sponsored ads less relevant than this (0..1) are not shown here; empty: ADENGINE's "
        "RELEVANCE_FLOORS for the page's kind.",
    )
    updated_at = models.DateTimeField("updated", auto_now=True, help_text="When it last changed.")

    class Meta:
        verbose_name = _("placement")
        verbose_name_plural = _("placements")
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key
