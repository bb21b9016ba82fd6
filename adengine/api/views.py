"""API views: thin, they validate input and call a service."""

from __future__ import annotations

from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle
from rest_framework.views import APIView

from adengine.models import BehaviourEvent
from adengine.services.behaviour import record_event, schedule_refresh
from adengine.services.shoppers import shopper_for_request

from .serializers import EventBatchSerializer, EventResultSerializer


class EventAnonThrottle(AnonRateThrottle):
    rate = "120/min"


class EventUserThrottle(UserRateThrottle):
    rate = "600/min"


class EventsView(APIView):
    """Record behaviour events for the calling shopper (session or authenticated user)."""

    permission_classes = [AllowAny]
    throttle_classes = [EventAnonThrottle, EventUserThrottle]

    @extend_schema(request=EventBatchSerializer, responses={201: EventResultSerializer})
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
