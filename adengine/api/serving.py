"""API for apps: ad decisions, impression beacons, "Why this ad?" and the personalisation switch."""

from __future__ import annotations

import hashlib
import logging
import re

from drf_spectacular.utils import OpenApiParameter
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
from adengine.serving import IndexNotReady, PageContext, UnknownPlacement, decide, tokens
from adengine.serving.presentation import decision_data, uri_builder

from .fields import PatternField, StrictBooleanField
from .lookups import UnknownProduct, product_by_key
from .schema import COUNTED_CLIENTS, error, responses
from .serializers import DecisionSerializer, PersonalisationStateSerializer, TrackResultSerializer, WhySerializer

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


SESSION_PATTERN = r"^[A-Za-z0-9_-]{16,128}$"
SESSION_HELP = "An app's own anonymous session id (16-128 of A-Z a-z 0-9 _ -), when it has no cookie or login."
# tokens.make: Django's signing of the nonce, "value:timestamp:signature", each part URL-safe base64 (or base62)
TOKEN_PATTERN = r"^[A-Za-z0-9_-]{1,200}:[A-Za-z0-9]{1,20}:[A-Za-z0-9_-]{20,100}$"


class DecisionQuerySerializer(serializers.Serializer):
    placement = PatternField(r"^[-a-zA-Z0-9_]{1,60}$", max_length=60, help_text="The placement's key.")
    n = serializers.IntegerField(required=False, min_value=1, max_value=20, help_text="Ads wanted (<= the slot's).")
    product = serializers.CharField(
        required=False,
        max_length=64,
        help_text="The product shown: its SKU (the shop's own key) or its id. Unknown, or the SKU of one product and "
        "the id of another: a 400 that says which to send.",
    )
    category = serializers.CharField(
        required=False, max_length=120, allow_blank=True, help_text="Category key of the page."
    )
    q = serializers.CharField(required=False, max_length=200, allow_blank=True, help_text="Search query on the page.")
    page = serializers.CharField(required=False, max_length=40, allow_blank=True, help_text="Page type, e.g. home.")
    language = serializers.CharField(
        required=False, max_length=16, allow_blank=True, help_text="Language of the copy (en, zh)."
    )
    session = PatternField(SESSION_PATTERN, required=False, help_text=SESSION_HELP)

    def validate_product(self, value):
        try:
            return product_by_key(value)
        except UnknownProduct as exc:
            raise serializers.ValidationError(str(exc)) from None


_SESSION = re.compile(SESSION_PATTERN)
_SLUG = re.compile(r"^[-a-zA-Z0-9_]{1,60}$")
_INT = re.compile(r"^-?[0-9]{1,9}$")
_TEXT_LIMITS = {"category": 120, "q": 200, "page": 40, "language": 16}


def parse_decision_query(params) -> dict:
    """The decision endpoint's query, validated by hand: this runs on every ad request, and a DRF
    serializer (kept above for the schema) costs more than the decision itself."""
    errors: dict[str, str] = {}
    out: dict = {}
    placement = params.get("placement", "")
    if not placement:
        errors["placement"] = "This field is required."
    elif not _SLUG.fullmatch(placement):
        errors["placement"] = "Enter a valid placement key (letters, numbers, underscores or hyphens)."
    out["placement"] = placement
    if "n" in params:
        if _INT.fullmatch(params["n"]):  # int() would also take " 5", "1_0" and other digits than 0-9
            out["n"] = int(params["n"])
            if not 1 <= out["n"] <= 20:
                errors["n"] = "Ensure this value is between 1 and 20."
        else:
            errors["n"] = "A valid integer is required."
    for name, limit in _TEXT_LIMITS.items():
        value = params.get(name, "")
        if len(value) > limit:
            errors[name] = f"Ensure this field has no more than {limit} characters."
        out[name] = value
    session = params.get("session")
    if session is not None and not _SESSION.fullmatch(session):
        errors["session"] = "16-128 characters of A-Z a-z 0-9 _ -."
    out["session"] = session
    if "product" in params and "product" not in errors:
        try:
            out["product"] = product_by_key(params["product"])
        except UnknownProduct as exc:
            errors["product"] = str(exc)
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

    @extend_schema(
        parameters=[DecisionQuerySerializer],
        responses=responses({200: DecisionSerializer}, extra={404: error("No placement has this key.")}),
        description="404: no placement has this key. 503: the database is unavailable, or the serving process is "
        "starting (with Retry-After; the storefront's slots render nothing then).\n\n" + COUNTED_CLIENTS,
    )
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
        except IndexNotReady:  # this process is starting: its candidate index is being built
            return Response(
                {"detail": "ads are unavailable right now (the ad server is starting); try again shortly."},
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
                headers={"Retry-After": "1"},
            )
        return Response(decision_data(decision, build_uri=uri_builder(request)))


class TokenSerializer(serializers.Serializer):
    token = PatternField(
        TOKEN_PATTERN,
        max_length=300,
        help_text="The token of an impression's view URL (signed: a forged one is a 400).",
    )


class ImpressionBeaconView(AdengineAPIView):
    """Report that an ad was shown (the token of its view URL). Counted once; replays get 409."""

    permission_classes = [AllowAny]
    throttle_classes = [TrackingThrottle]

    @extend_schema(
        request=TokenSerializer,
        responses=responses(
            {200: TrackResultSerializer},
            body=True,
            not_found=True,
            extra={
                409: error("A replay: logged as a duplicate, not counted.", TrackResultSerializer),
                410: error("The view link has expired."),
            },
        ),
        description="400: the token is malformed or its signature is wrong. 404: no such impression. 409: a replay "
        "(logged, not counted). 410: the view link has expired.\n\n" + COUNTED_CLIENTS,
    )
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

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "token",
                {"type": "string", "pattern": TOKEN_PATTERN, "maxLength": 300},
                OpenApiParameter.PATH,
                description='The token of the ad\'s "Why this ad?" URL (signed: a forged one is a 400).',
            )
        ],
        responses=responses({200: WhySerializer}, not_found=True, extra={410: error("The link has expired.")}),
        description="400: the token is malformed or its signature is wrong. 404: no such impression. 410: the link has "
        "expired.",
    )
    def get(self, request, token: str):
        try:
            impression = impression_for("why", token, related=("campaign__advertiser",))
        except tokens.TokenError as exc:
            return Response({"detail": str(exc)}, status=exc.status)
        return Response(explain(impression, viewer=shopper_for_request(request, create=False)))


class PersonalisationSerializer(serializers.Serializer):
    allowed = StrictBooleanField(help_text="false: no personalised ads, browsing history deleted.")
    session = PatternField(SESSION_PATTERN, required=False, help_text=SESSION_HELP)


class PersonalisationQuerySerializer(serializers.Serializer):
    session = PatternField(SESSION_PATTERN, required=False, help_text=SESSION_HELP)


class PersonalisationView(AdengineAPIView):
    """Read or set whether the calling shopper gets personalised ads."""

    permission_classes = [AllowAny]
    throttle_classes = [TrackingThrottle]

    @extend_schema(
        parameters=[PersonalisationQuerySerializer],
        responses=responses({200: PersonalisationStateSerializer}),
        description="400 also when the caller has no session cookie, no login and no session parameter.",
    )
    def get(self, request):
        query = PersonalisationQuerySerializer(data=request.query_params.dict())  # "" is a value, not "absent"
        query.is_valid(raise_exception=True)
        shopper = _shopper(request, query.validated_data.get("session"), create=False)
        # no shopper yet: nothing recorded about them, and the shop's default applies until they choose
        return Response({"allowed": shopper.personalisation if shopper else bool(ad_settings.PERSONALISATION_DEFAULT)})

    @extend_schema(
        request=PersonalisationSerializer,
        responses=responses({200: PersonalisationStateSerializer}, body=True),
        description="403 also when an anonymous browser session sends no CSRF token. 400 also when the caller has no "
        "session cookie, no login and no session.",
    )
    def post(self, request):
        data = PersonalisationSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if not data.validated_data.get("session") and not request.user.is_authenticated:
            # the browser's session cookie names the shopper: another site must not be able to flip their consent
            # (DRF checks CSRF for users logged in by session; an anonymous session needs it as much; a login by
            # Basic credentials is no ambient authority and needs none)
            SessionAuthentication().enforce_csrf(request)
        shopper = _shopper(request, data.validated_data.get("session"), create=True)
        if shopper is None:
            return Response({"detail": "no session: send cookies, log in or pass session."}, status=400)
        set_personalisation(shopper=shopper, allowed=data.validated_data["allowed"])
        return Response({"allowed": shopper.personalisation})
