"""API for apps: ad decisions, impression beacons, "Why this ad?" and the personalisation switch."""

from __future__ import annotations

import hashlib
import logging
import re

from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle

from adengine.adapters import get_adapter
from adengine.api.base import AdengineAPIView, ClientIPThrottleMixin, extend_schema
from adengine.conf import settings as ad_settings
from adengine.models import AdEvent
from adengine.net import client_ip
from adengine.selectors.why import explain
from adengine.services.shoppers import get_or_create_anonymous, set_personalisation, shopper_for_request
from adengine.services.tracking import impression_for, record
from adengine.serving import PageContext, UnknownPlacement, decide, tokens
from adengine.serving.presentation import decision_data

from .lookups import product_by_key

log = logging.getLogger(__name__)


class ConfiguredThrottle(ClientIPThrottleMixin, SimpleRateThrottle):
    """Per user (authenticated) or per IP, at the rate named in ADENGINE['API_THROTTLE_RATES']."""

    scope = ""

    def get_rate(self):
        return ad_settings.API_THROTTLE_RATES.get(self.scope)

    def get_cache_key(self, request, view):
        ident = request.user.pk if request.user and request.user.is_authenticated else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


class DecisionThrottle(ConfiguredThrottle):
    scope = "decisions"


class TrackingThrottle(ConfiguredThrottle):
    scope = "tracking"


class DecisionQuerySerializer(serializers.Serializer):
    placement = serializers.SlugField(max_length=60, help_text="The placement's key.")
    n = serializers.IntegerField(required=False, min_value=1, max_value=20, help_text="Ads wanted (<= the slot's).")
    product = serializers.CharField(required=False, max_length=64, help_text="Primary key of the product shown.")
    category = serializers.CharField(required=False, max_length=120, help_text="Category key of the page.")
    q = serializers.CharField(required=False, max_length=200, allow_blank=True, help_text="Search query on the page.")
    page = serializers.CharField(required=False, max_length=40, allow_blank=True, help_text="Page type, e.g. home.")
    language = serializers.CharField(required=False, max_length=16, help_text="Language of the copy (en, zh).")
    session = serializers.RegexField(
        r"^[A-Za-z0-9_-]{16,128}$",
        required=False,
        help_text="An app's own anonymous session id (16-128 of A-Z a-z 0-9 _ -), when it has no cookie or login.",
    )

    def validate_product(self, value):
        product = product_by_key(value)
        if product is None:
            raise serializers.ValidationError(f"no product with SKU or id {value!r}.")
        return product


_SESSION = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
_SLUG = re.compile(r"^[-a-zA-Z0-9_]{1,60}$")
_TEXT_LIMITS = {"category": 120, "q": 200, "page": 40, "language": 16}


def parse_decision_query(params) -> dict:
    """The decision endpoint's query, validated by hand: this runs on every ad request, and a DRF
    serializer (kept above for the schema) costs more than the decision itself."""
    errors: dict[str, str] = {}
    out: dict = {}
    placement = params.get("placement", "")
    if not placement:
        errors["placement"] = "This field is required."
    elif not _SLUG.match(placement):
        errors["placement"] = "Enter a valid placement key (letters, numbers, underscores or hyphens)."
    out["placement"] = placement
    if "n" in params:
        try:
            out["n"] = int(params["n"])
            if not 1 <= out["n"] <= 20:
                errors["n"] = "Ensure this value is between 1 and 20."
        except ValueError:
            errors["n"] = "A valid integer is required."
    for name, limit in _TEXT_LIMITS.items():
        value = params.get(name, "")
        if len(value) > limit:
            errors[name] = f"Ensure this field has no more than {limit} characters."
        out[name] = value
    session = params.get("session")
    if session is not None and not _SESSION.match(session):
        errors["session"] = "16-128 characters of A-Z a-z 0-9 _ -."
    out["session"] = session
    if "product" in params and "product" not in errors:
        value = params["product"]
        product = product_by_key(value)
        if product is None:
            errors["product"] = f"no product with SKU or id {value!r}."
        out["product"] = product
    if errors:
        raise serializers.ValidationError(errors)
    return out


def _shopper(request, session: str | None, *, create: bool):
    """The app session's shopper (created on demand: the app asked for one), else the cookie session's or user's.

    ``create`` for the cookie session: only a meaningful event (a consent choice) creates rows; a request alone
    (a decision, a read) does not, so cookie-less clients and bots leave no shopper or session behind.
    """
    if session and not (request.user and request.user.is_authenticated):
        return get_or_create_anonymous(anonymous_key=hashlib.sha256(session.encode()).hexdigest()[:32])
    return shopper_for_request(request, create=create)


class DecisionView(AdengineAPIView):
    """Ads for one placement, with signed impression (view) and click URLs. Call the view URL when an ad is
    shown; open the click URL when it is tapped."""

    permission_classes = [AllowAny]
    throttle_classes = [DecisionThrottle]

    unavailable_message = "ads are unavailable right now."

    @extend_schema(parameters=[DecisionQuerySerializer], responses={200: dict, 404: dict, 503: dict})
    def get(self, request):
        q = parse_decision_query(request.query_params)
        product = q.get("product")
        try:
            adapter = get_adapter()
            decision = decide(
                placement_key=q["placement"],
                shopper=_shopper(request, q.get("session"), create=False),
                context=PageContext(
                    page=q["page"],
                    product=product.pk if product is not None else None,
                    category=q["category"],
                    query=q["q"],
                    client="api",
                ),
                n=q.get("n"),
                language=q["language"] or None,
                product_categories=adapter.category_keys(product) if product else (),
            )
        except UnknownPlacement:
            return Response({"detail": f"no placement {q['placement']!r}."}, status=status.HTTP_404_NOT_FOUND)
        return Response(decision_data(decision, build_uri=request.build_absolute_uri))


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(max_length=300, help_text="The token of an impression's view URL.")


class ImpressionBeaconView(AdengineAPIView):
    """Report that an ad was shown (the token of its view URL). Counted once; replays get 409."""

    permission_classes = [AllowAny]
    throttle_classes = [TrackingThrottle]

    @extend_schema(request=TokenSerializer, responses={200: dict, 400: dict, 404: dict, 409: dict, 410: dict})
    def post(self, request):
        data = TokenSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            result = record(
                kind=AdEvent.Kind.VIEW,
                token=data.validated_data["token"],
                ip=client_ip(request),
                user_agent=request.headers.get("User-Agent", ""),
            )
        except tokens.TokenError as exc:
            return Response({"detail": str(exc)}, status=exc.status)
        code = status.HTTP_409_CONFLICT if result.event.status == AdEvent.Status.DUPLICATE else status.HTTP_200_OK
        return Response({"status": result.event.status, "counted": result.counted}, status=code)


class WhyView(AdengineAPIView):
    """Why an ad was shown (the token of its "Why this ad?" URL)."""

    permission_classes = [AllowAny]
    throttle_classes = [TrackingThrottle]

    @extend_schema(responses={200: dict, 400: dict, 404: dict, 410: dict})
    def get(self, request, token: str):
        try:
            impression = impression_for("why", token, related=("campaign__advertiser",))
        except tokens.TokenError as exc:
            return Response({"detail": str(exc)}, status=exc.status)
        return Response(explain(impression, viewer=shopper_for_request(request, create=False)))


class PersonalisationSerializer(serializers.Serializer):
    allowed = serializers.BooleanField(help_text="false: no personalised ads, browsing history deleted.")
    session = serializers.RegexField(r"^[A-Za-z0-9_-]{16,128}$", required=False)


class PersonalisationView(AdengineAPIView):
    """Read or set whether the calling shopper gets personalised ads."""

    permission_classes = [AllowAny]
    throttle_classes = [TrackingThrottle]

    @extend_schema(responses={200: dict})
    def get(self, request):
        shopper = _shopper(request, request.query_params.get("session"), create=False)
        # no shopper yet: nothing recorded about them, and the shop's default applies until they choose
        return Response({"allowed": shopper.personalisation if shopper else bool(ad_settings.PERSONALISATION_DEFAULT)})

    @extend_schema(request=PersonalisationSerializer, responses={200: dict, 403: dict})
    def post(self, request):
        data = PersonalisationSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if not data.validated_data.get("session"):
            # the browser's session cookie names the shopper: another site must not be able to flip their consent
            # (DRF checks CSRF for logged-in users only; an anonymous session needs it as much)
            SessionAuthentication().enforce_csrf(request)
        shopper = _shopper(request, data.validated_data.get("session"), create=True)
        if shopper is None:
            return Response({"detail": "no session: send cookies, log in or pass session."}, status=400)
        set_personalisation(shopper=shopper, allowed=data.validated_data["allowed"])
        return Response({"allowed": shopper.personalisation})
