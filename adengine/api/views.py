"""API views: thin, they validate input and call a service."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.shortcuts import get_object_or_404
from django.utils.decorators import method_decorator
from drf_spectacular.utils import OpenApiParameter
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle

from adengine.api.base import AdengineAPIView, ClientIPThrottleMixin, extend_schema
from adengine.models import BehaviourEvent, GenerationRequest
from adengine.services.behaviour import record_event, schedule_refresh
from adengine.services.creatives import (
    CreativeRequestError,
    GenerationNotQueued,
    add_human_asset,
    request_copy,
    review,
)
from adengine.services.shoppers import shopper_for_request

from .lookups import ID_SCHEMA
from .permissions import IsAdvertiserUser, campaigns_for, creatives_for
from .schema import error, responses
from .serializers import (
    CreativeQuerySerializer,
    CreativeSerializer,
    EventBatchSerializer,
    EventResultSerializer,
    GenerateRequestSerializer,
    GenerationRequestSerializer,
    GenerationUnavailableSerializer,
    HumanCreativeSerializer,
)


class EventAnonThrottle(ClientIPThrottleMixin, AnonRateThrottle):
    rate = "120/min"


class EventUserThrottle(ClientIPThrottleMixin, UserRateThrottle):
    rate = "600/min"


class EventsView(AdengineAPIView):
    """Record behaviour events for the calling shopper (session or authenticated user)."""

    permission_classes = [AllowAny]
    throttle_classes = [EventAnonThrottle, EventUserThrottle]

    @extend_schema(
        request=EventBatchSerializer,
        responses=responses({201: EventResultSerializer}, body=True),
        description="Events are the caller's: their login's, else their session cookie's; a caller with neither "
        "gets a new anonymous session, whose cookie the response sets (send it back with the next events). 400 also "
        "for an unknown product, a search without a query, a view or cart without a product, an event more than 7 "
        "days old or in the future, and when the caller has no login and the shop keeps no sessions.",
    )
    def post(self, request):
        serializer = EventBatchSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        shopper = shopper_for_request(request)
        if shopper is None:
            return Response(
                {"detail": "no session: enable cookies or authenticate."}, status=status.HTTP_400_BAD_REQUEST
            )
        recorded = 0
        with transaction.atomic():
            for item in serializer.validated_data["events"]:
                event = record_event(
                    shopper=shopper,
                    kind=item["kind"],
                    product=item.get("product"),
                    query=item.get("query", ""),
                    quantity=item.get("quantity", 1),
                    occurred_at=item.get("occurred_at"),
                    source=BehaviourEvent.Source.API,
                    trigger_refresh=False,
                )
                recorded += event is not None
        if recorded:
            schedule_refresh()
        total = len(serializer.validated_data["events"])
        return Response({"recorded": recorded, "skipped": total - recorded}, status=status.HTTP_201_CREATED)


class AdvertiserThrottle(UserRateThrottle):
    rate = "300/min"


class GenerateThrottle(UserRateThrottle):
    scope = "adengine-generate"
    rate = "30/hour"


@method_decorator(transaction.non_atomic_requests, name="dispatch")  # queued at once, so a broker outage is a 503
class CampaignGenerateView(AdengineAPIView):
    """Ask for generated copy for one of your campaigns; returns the request to poll (503 while the broker is down)."""

    permission_classes = [IsAdvertiserUser]
    throttle_classes = [GenerateThrottle]

    @extend_schema(
        parameters=[OpenApiParameter("campaign_id", ID_SCHEMA, OpenApiParameter.PATH)],
        request=GenerateRequestSerializer,
        responses=responses(
            {202: GenerationRequestSerializer},
            body=True,
            not_found=True,
            extra={503: GenerationUnavailableSerializer},
        ),
        description="400 also when the campaign has neither keywords nor promoted products to write about.",
    )
    def post(self, request, campaign_id: int):
        campaign = get_object_or_404(campaigns_for(request.user), pk=campaign_id)
        data = GenerateRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            req = request_copy(campaign=campaign, user=request.user, **data.validated_data)
        except CreativeRequestError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        except GenerationNotQueued as exc:  # the request is stored as failed, with the reason
            return Response(
                {
                    "detail": f"copy generation is unavailable right now; try again later ({exc}).",
                    "request": GenerationRequestSerializer(exc.request).data,
                },
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
                headers={"Retry-After": "60"},
            )
        return Response(GenerationRequestSerializer(req).data, status=status.HTTP_202_ACCEPTED)


class GenerationRequestView(AdengineAPIView):
    """The status and progress of a copy request."""

    permission_classes = [IsAdvertiserUser]
    throttle_classes = [AdvertiserThrottle]

    @extend_schema(responses=responses({200: GenerationRequestSerializer}, not_found=True))
    def get(self, request, request_id):
        req = get_object_or_404(
            GenerationRequest.objects.filter(campaign__in=campaigns_for(request.user)), pk=request_id
        )
        return Response(GenerationRequestSerializer(req).data)


class CreativeListView(AdengineAPIView):
    """Your assets (filter with ?campaign=, ?status=, ?language=), or add one written by a person."""

    permission_classes = [IsAdvertiserUser]
    throttle_classes = [AdvertiserThrottle]

    @extend_schema(parameters=[CreativeQuerySerializer], responses=responses({200: CreativeSerializer(many=True)}))
    def get(self, request):
        query = CreativeQuerySerializer(data=request.query_params.dict())  # "" is a value, not "absent"
        query.is_valid(raise_exception=True)
        qs = creatives_for(request.user).order_by("campaign_id", "language", "asset_type", "-score")
        filters = {("campaign_id" if k == "campaign" else k): v for k, v in query.validated_data.items()}
        return Response(CreativeSerializer(qs.filter(**filters)[:500], many=True).data)

    @extend_schema(
        request=HumanCreativeSerializer,
        responses=responses(
            {201: CreativeSerializer},
            body=True,
            not_found=True,
            extra={409: error("The campaign already has this asset.")},
        ),
        description="404: no campaign of yours has this id. 409: the campaign already has this asset. A text that "
        "fails the advertising rules is stored as rejected, with the reasons.",
    )
    def post(self, request):
        data = HumanCreativeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        campaign = get_object_or_404(campaigns_for(request.user), pk=data.validated_data["campaign"])
        try:
            asset = add_human_asset(
                campaign=campaign,
                asset_type=data.validated_data["asset_type"],
                language=data.validated_data["language"],
                text=data.validated_data["text"],
                user=request.user,
            )
        except CreativeRequestError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        except IntegrityError:
            return Response({"detail": "this campaign already has that asset"}, status=status.HTTP_409_CONFLICT)
        return Response(CreativeSerializer(asset).data, status=status.HTTP_201_CREATED)


class CreativeReviewView(AdengineAPIView):
    """Approve or reject one of your assets (an asset that fails the rules cannot be approved)."""

    permission_classes = [IsAdvertiserUser]
    throttle_classes = [AdvertiserThrottle]
    action = "approve"

    @extend_schema(
        parameters=[OpenApiParameter("creative_id", ID_SCHEMA, OpenApiParameter.PATH)],
        request=None,
        responses=responses(
            {200: CreativeSerializer},
            not_found=True,
            extra={409: error("The asset fails the advertising rules and cannot be approved.")},
        ),
        description="409: the asset fails the advertising rules and cannot be approved.",
    )
    def post(self, request, creative_id: int):
        qs = creatives_for(request.user).filter(pk=creative_id)
        asset = get_object_or_404(qs)
        if self.action == "approve" and not asset.passes_rules:
            return Response(
                {"detail": "this asset fails the advertising rules: " + "; ".join(asset.rejection_reasons)},
                status=status.HTTP_409_CONFLICT,
            )
        review(creatives=qs, approve=self.action == "approve", user=request.user)
        asset.refresh_from_db()
        return Response(CreativeSerializer(asset).data)
