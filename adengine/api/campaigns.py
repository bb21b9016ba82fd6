"""API for advertisers: their campaigns (read, create, change) and their statistics."""

from __future__ import annotations

import copy
import datetime as dt
import re

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from django.shortcuts import get_object_or_404
from django.utils.decorators import method_decorator
from drf_spectacular.utils import OpenApiParameter, extend_schema_field, extend_schema_view
from rest_framework import generics, serializers, status
from rest_framework.response import Response

from adengine.api.base import AdengineAPIView, SafeRequestMixin, extend_schema
from adengine.clock import day_start
from adengine.models import Advertiser, Campaign, Placement
from adengine.routers import for_reports
from adengine.selectors.catalog import closest_category, find_category, shop_categories
from adengine.selectors.performance import Figures, figures
from adengine.services.campaigns import save_campaign
from adengine.text import split_keywords
from adengine.validators import validate_landing_url

from .fields import AmountField, StrictCharField, StrictFloatField, StrictIntegerField
from .lookups import ID_MAX, ID_SCHEMA, UnknownProduct, product_by_key, product_refs
from .permissions import IsAdvertiserUser, campaigns_for
from .schema import responses
from .serializers import CampaignStatsSerializer, not_blank
from .serving import ConfiguredThrottle


class AdvertiserApiThrottle(ConfiguredThrottle):
    scope = "advertiser"


def validate_landing(value: str) -> str:
    """A landing page is a path on this shop or an https URL on its hosts: never javascript:, // or /\\."""
    value = (value or "").strip()
    try:
        validate_landing_url(value)
    except DjangoValidationError as exc:
        raise serializers.ValidationError(exc.messages) from exc
    return value


@extend_schema_field({"type": "string", "minLength": 1, "maxLength": 64})
class ProductKeyField(serializers.Field):
    """A host product by its SKU (the shop's own key) or its id, as a string (an unknown or ambiguous one is a 400)."""

    def to_representation(self, value):
        return str(value.pk)

    def to_internal_value(self, data):
        if not isinstance(data, str) or not 0 < len(data) <= 64:
            raise serializers.ValidationError("a product's SKU or id: a string of 1-64 characters.")
        try:
            return product_by_key(data)
        except UnknownProduct as exc:
            raise serializers.ValidationError(str(exc)) from None


class ProductListField(serializers.ListField):
    """Products in by SKU or id, product ids out (read from the many-to-many manager)."""

    def to_representation(self, data):
        return [str(pk) for pk in data.order_by("pk").values_list("pk", flat=True)]


class ProductRefSerializer(serializers.Serializer):
    product_id = serializers.CharField(help_text="The product's id (primary key).")
    product_key = serializers.CharField(help_text="The shop's own key of the product (its SKU), else its id.")


@extend_schema_field(ProductRefSerializer(many=True))
class ProductRefsField(serializers.Field):
    """The promoted products named both ways, in the order of ``promoted_products``."""

    def __init__(self, **kwargs):
        super().__init__(source="promoted_products", read_only=True, **kwargs)

    def to_representation(self, value):
        return product_refs(value.order_by("pk"))


@extend_schema_field(ID_SCHEMA)
class AdvertiserField(serializers.PrimaryKeyRelatedField):
    """An advertiser by its integer id (an unknown one is a 400)."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int) or not 0 <= data <= ID_MAX:
            self.fail("incorrect_type", data_type=type(data).__name__)
        return super().to_internal_value(data)


@extend_schema_field({"type": "string", "minLength": 1, "maxLength": 60, "pattern": r"^[-a-zA-Z0-9_]+$"})
class PlacementKeyField(serializers.SlugRelatedField):
    """A placement by its key (an unknown one is a 400)."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class CampaignSerializer(serializers.ModelSerializer):
    """A campaign. Rules the schema cannot say, each a 400 naming its field: the advertiser must be one you manage
    (and a campaign never moves to another), only staff run house ads, a sponsored campaign's bid is above 0,
    ``ends_at`` after ``starts_at``, the daily budget at most the total, the total at least what is spent, the
    products, placements and advertiser must exist, the categories must be the shop's (a key or a name; stored by
    key), the languages ones the shop writes ads in, and the landing URL must be a path on the shop or an https URL
    on its hosts. Keywords are trimmed and a repeat (case aside) kept once."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.CharField: StrictCharField,
        models.TextField: StrictCharField,
        models.PositiveIntegerField: StrictIntegerField,
        models.FloatField: StrictFloatField,
    }

    advertiser = AdvertiserField(queryset=Advertiser.objects.all())
    name = StrictCharField(max_length=160, validators=[not_blank], help_text="Internal name of the campaign.")
    bid = AmountField(
        max_digits=10, decimal_places=4, required=False, help_text=Campaign._meta.get_field("bid").help_text
    )
    total_budget = AmountField(
        max_digits=12, decimal_places=4, required=False, help_text=Campaign._meta.get_field("total_budget").help_text
    )
    daily_budget = AmountField(
        max_digits=12,
        decimal_places=4,
        required=False,
        allow_null=True,
        help_text=Campaign._meta.get_field("daily_budget").help_text,
    )
    spent = serializers.DecimalField(max_digits=12, decimal_places=4, read_only=True)
    audience_min_similarity = StrictFloatField(
        required=False,
        allow_null=True,
        min_value=-1.0,
        max_value=1.0,
        help_text=Campaign._meta.get_field("audience_min_similarity").help_text,
    )
    keywords = serializers.ListField(
        child=StrictCharField(max_length=60, validators=[not_blank]),
        required=False,
        help_text=Campaign._meta.get_field("keywords").help_text,
    )
    languages = serializers.ListField(
        child=StrictCharField(max_length=10, validators=[not_blank]),
        required=False,
        help_text=Campaign._meta.get_field("languages").help_text,
    )
    categories = serializers.ListField(
        child=StrictCharField(max_length=120, validators=[not_blank]),
        required=False,
        help_text=Campaign._meta.get_field("categories").help_text,
    )
    promoted_products = ProductListField(
        child=ProductKeyField(),
        required=False,
        help_text="Ids of the promoted products; send each as its SKU (the shop's own key) or its id.",
    )
    promoted_product_details = ProductRefsField(help_text="The promoted products with their ids and SKUs.")
    placements = PlacementKeyField(slug_field="key", queryset=Placement.objects.all(), many=True, required=False)
    landing_url = StrictCharField(required=False, allow_blank=True, max_length=500, validators=[validate_landing])

    class Meta:
        model = Campaign
        fields = [
            "id",
            "advertiser",
            "name",
            "status",
            "objective",
            "pricing",
            "bid",
            "total_budget",
            "daily_budget",
            "spent",
            "starts_at",
            "ends_at",
            "tier",
            "frequency_cap",
            "description",
            "keywords",
            "languages",
            "categories",
            "audience_min_similarity",
            "landing_url",
            "promoted_products",
            "promoted_product_details",
            "placements",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["spent", "created_at", "updated_at"]

    def validate_advertiser(self, advertiser):
        user = self.context["request"].user
        if not user.is_staff and not advertiser.managers.filter(pk=user.pk).exists():
            raise serializers.ValidationError("you do not manage this advertiser.")
        if self.instance is not None and advertiser != self.instance.advertiser:
            raise serializers.ValidationError("a campaign cannot move to another advertiser.")
        return advertiser

    def validate_tier(self, tier):
        if tier == Campaign.Tier.HOUSE and not self.context["request"].user.is_staff:
            raise serializers.ValidationError("only the shop's staff run house ads.")
        return tier

    def validate_keywords(self, keywords):
        return split_keywords("\n".join(keywords))  # trimmed, repeats (case aside) once: as the admin stores them

    def validate_categories(self, values):
        """Keys of the shop's categories; a key or a name in any language is accepted, as in the admin."""
        options, keys, errors = shop_categories(), [], []
        for value in values:
            option = find_category(value, options)
            if option is not None:
                keys.append(option.key)
                continue
            close = closest_category(value, options)
            hint = f"; did you mean {close.key!r} ({close.name})?" if close else "; use one of the shop's keys."
            errors.append(f"{value!r} is not a category of the shop{hint}")
        if errors:
            raise serializers.ValidationError(errors)
        return list(dict.fromkeys(keys))

    def validate(self, attrs):
        """The model's own rules (``Campaign.clean``, which the admin and ``load_campaigns`` run too) on the
        campaign as it would be saved: a sponsored campaign's bid above 0, languages the shop writes in, the
        dates, the budgets against each other and against what is spent..."""
        campaign = copy.copy(self.instance) if self.instance is not None else Campaign()
        for name, value in attrs.items():
            if name not in ("promoted_products", "placements"):
                setattr(campaign, name, value)
        try:
            campaign.clean()
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None
        return attrs

    def create(self, validated):
        products, placements = validated.pop("promoted_products", None), validated.pop("placements", None)
        return save_campaign(fields=validated, products=products, placements=placements)

    def update(self, instance, validated):
        products, placements = validated.pop("promoted_products", None), validated.pop("placements", None)
        return save_campaign(campaign=instance, fields=validated, products=products, placements=placements)


_CAMPAIGN_ID = OpenApiParameter("campaign_id", ID_SCHEMA, OpenApiParameter.PATH, description="One of your campaigns.")


@extend_schema_view(
    get=extend_schema(responses=responses({200: CampaignSerializer(many=True)})),
    post=extend_schema(responses=responses({201: CampaignSerializer}, body=True)),
)
class CampaignListView(SafeRequestMixin, generics.ListCreateAPIView):
    """Your campaigns; create one for an advertiser you manage."""

    permission_classes = [IsAdvertiserUser]
    throttle_classes = [AdvertiserApiThrottle]
    serializer_class = CampaignSerializer

    def get_queryset(self):
        return campaigns_for(self.request.user).select_related("advertiser").order_by("pk")


@extend_schema_view(
    get=extend_schema(parameters=[_CAMPAIGN_ID], responses=responses({200: CampaignSerializer}, not_found=True)),
    put=extend_schema(
        parameters=[_CAMPAIGN_ID], responses=responses({200: CampaignSerializer}, body=True, not_found=True)
    ),
    patch=extend_schema(
        parameters=[_CAMPAIGN_ID], responses=responses({200: CampaignSerializer}, body=True, not_found=True)
    ),
)
class CampaignDetailView(SafeRequestMixin, generics.RetrieveUpdateAPIView):
    """One of your campaigns: read it or change its status, budgets, bid, schedule or targeting."""

    permission_classes = [IsAdvertiserUser]
    throttle_classes = [AdvertiserApiThrottle]
    serializer_class = CampaignSerializer
    lookup_url_kwarg = "campaign_id"

    def get_queryset(self):
        return campaigns_for(self.request.user).select_related("advertiser")


_DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def _date(value: str | None, name: str) -> dt.datetime | None:
    if value is None:
        return None
    try:
        if not _DAY.fullmatch(value):  # fromisoformat would also take "20261201" and week dates
            raise ValueError(value)
        day = dt.date.fromisoformat(value)
        return day_start(day)
    except (ValueError, OverflowError):
        raise serializers.ValidationError({name: "a date, YYYY-MM-DD."}) from None


class CampaignStatsView(AdengineAPIView):
    """Impressions, clicks, CTR, conversions, conversion rate, spend, revenue and ROAS, in total and by day."""

    permission_classes = [IsAdvertiserUser]
    throttle_classes = [AdvertiserApiThrottle]

    @extend_schema(
        parameters=[
            _CAMPAIGN_ID,
            OpenApiParameter("since", {"type": "string", "format": "date"}, description="First day (YYYY-MM-DD)."),
            OpenApiParameter(
                "until", {"type": "string", "format": "date"}, description="Day after the last (YYYY-MM-DD)."
            ),
        ],
        responses=responses({200: CampaignStatsSerializer}, not_found=True),
        description="400 also when until is not after since.",
    )
    @method_decorator(for_reports)
    def get(self, request, campaign_id: int):
        campaign = get_object_or_404(campaigns_for(request.user), pk=campaign_id)
        since = _date(request.query_params.get("since"), "since")
        until = _date(request.query_params.get("until"), "until")
        if since and until and until <= since:
            return Response({"until": "must be after since."}, status=status.HTTP_400_BAD_REQUEST)
        total = figures([campaign.pk], by=(), since=since, until=until).get((), Figures())
        days = figures([campaign.pk], by=("day",), since=since, until=until)
        return Response(
            {
                "campaign": campaign.pk,
                "spent_total": str(campaign.spent),
                "total_budget": str(campaign.total_budget),
                "totals": total.as_dict(),
                "by_day": [{"day": day.isoformat(), **f.as_dict()} for (day,), f in sorted(days.items())],
            }
        )
