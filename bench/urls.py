"""The demo shop's URLs plus a bare DRF endpoint returning a fixed body (the throughput baseline)."""

from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

FIXED = {
    "decision_id": "00000000-0000-0000-0000-000000000000",
    "placement": "home-hero",
    "format": "product",
    "personalised": True,
    "ads": [],
}


class FixedView(APIView):
    """The same DRF stack as the decision endpoint (authentication, parsers, renderers), no work."""

    permission_classes = [AllowAny]

    def get(self, request):
        return Response(FIXED)


from shop.urls import urlpatterns as shop_urlpatterns  # noqa: E402  (the shop's own list, not include(): no namespace)

urlpatterns = [path("bench/fixed/", FixedView.as_view()), *shop_urlpatterns]
