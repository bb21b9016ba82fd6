"""API for advertisers: their campaigns (read, create, change) and their statistics."""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError as DjangoValidationError
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter
from rest_framework import generics, serializers, status
from rest_framework.response import Response

from adengine.api.base import AdengineAPIView, SafeRequestMixin, extend_schema
from adengine.clock import day_start
from adengine.models import Advertiser, Campaign, Placement
from adengine.selectors.performance import Figures, figures
from adengine.validators import validate_landing_url

from .lookups import product_by_key
from .permissions import IsAdvertiserUser, campaigns_for
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


class ProductKeyField(serializers.Field):
    """A host product by primary key."""

    def to_representation(self, value):
        return str(value.pk)

    def to_internal_value(self, data):
        product = product_by_key(data)
        if product is None:
            raise serializers.ValidationError(f"no product with SKU or id {data!r}.")
        return product


class CampaignSerializer(serializers.ModelSerializer):
    advertiser = serializers.PrimaryKeyRelatedField(queryset=Advertiser.objects.all())
    promoted_products = serializers.ListField(child=ProductKeyField(), required=False, write_only=True)
    placements = serializers.SlugRelatedField(
        slug_field="key", queryset=Placement.objects.all(), many=True, required=False
    )
    landing_url = serializers.CharField(required=False, allow_blank=True, validators=[validate_landing])

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
            "placements",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["spent", "created_at", "updated_at"]

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["promoted_products"] = [str(pk) for pk in instance.promoted_products.values_list("pk", flat=True)]
        return data

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

    def validate(self, attrs):
        get = lambda k: attrs.get(k, getattr(self.instance, k, None))  # noqa: E731
        starts, ends = get("starts_at"), get("ends_at")
        if starts and ends and ends <= starts:
            raise serializers.ValidationError({"ends_at": "must be after starts_at."})
        daily, total = get("daily_budget"), get("total_budget")
        if daily is not None and total is not None and daily > total:
            raise serializers.ValidationError({"daily_budget": "cannot exceed the total budget."})
        if self.instance is not None and total is not None and total < self.instance.spent:
            raise serializers.ValidationError({"total_budget": f"{self.instance.spent} is already spent."})
        sim = get("audience_min_similarity")
        if sim is not None and not -1.0 <= sim <= 1.0:
            raise serializers.ValidationError({"audience_min_similarity": "a cosine similarity, -1..1."})
        return attrs

    def _links(self, campaign, products, placements):
        if products is not None:
            campaign.promoted_products.set(products)
        if placements is not None:
            campaign.placements.set(placements)

    def create(self, validated):
        products, placements = validated.pop("promoted_products", None), validated.pop("placements", None)
        campaign = super().create(validated)
        self._links(campaign, products, placements)
        return campaign

    def update(self, instance, validated):
        products, placements = validated.pop("promoted_products", None), validated.pop("placements", None)
        campaign = super().update(instance, validated)
        self._links(campaign, products, placements)
        return campaign


class CampaignListView(SafeRequestMixin, generics.ListCreateAPIView):
    """Your campaigns; create one for an advertiser you manage."""

    permission_classes = [IsAdvertiserUser]
    throttle_classes = [AdvertiserApiThrottle]
    serializer_class = CampaignSerializer

    def get_queryset(self):
        return campaigns_for(self.request.user).select_related("advertiser").order_by("pk")


class CampaignDetailView(SafeRequestMixin, generics.RetrieveUpdateAPIView):
    """One of your campaigns: read it or change its status, budgets, bid, schedule or targeting."""

    permission_classes = [IsAdvertiserUser]
    throttle_classes = [AdvertiserApiThrottle]
    serializer_class = CampaignSerializer
    lookup_url_kwarg = "campaign_id"

    def get_queryset(self):
        return campaigns_for(self.request.user).select_related("advertiser")


def _date(value: str | None, name: str) -> dt.datetime | None:
    if not value:
        return None
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise serializers.ValidationError({name: "a date, YYYY-MM-DD."}) from None
    return day_start(day)


class CampaignStatsView(AdengineAPIView):
    """Impressions, clicks, CTR, conversions, conversion rate, spend, revenue and ROAS, in total and by day."""

    permission_classes = [IsAdvertiserUser]
    throttle_classes = [AdvertiserApiThrottle]

    @extend_schema(
        parameters=[
            OpenApiParameter("since", str, description="First day (YYYY-MM-DD)."),
            OpenApiParameter("until", str, description="Day after the last (YYYY-MM-DD)."),
        ],
        responses={200: dict},
    )
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
