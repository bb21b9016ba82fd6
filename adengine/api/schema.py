"""What the OpenAPI schema says every operation can answer: the error bodies and the shared responses.

Every adengine API view can answer 400 (a body or query that fails validation, or a control byte), 403 (bad
credentials, or not allowed), 429 (throttled) and 503 (the database is unavailable); the helpers below add those
to each operation's documented responses, so the schema lists every status the view really sends.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    """An error that is not about one field: bad credentials, no permission, not found, throttled, unavailable."""

    detail = serializers.CharField(help_text="What went wrong, in words.")


VALIDATION_ERROR = {
    "type": "object",
    "description": "Validation errors: each key names the field that failed (``detail`` or ``non_field_errors`` "
    "when no single field did), each value is a message, a list of messages or, for nested fields, the nested "
    "errors.",
    "minProperties": 1,
    "additionalProperties": {"anyOf": [{"type": "string"}, {"type": "array"}, {"type": "object"}]},
    "example": {"placement": ["This field is required."]},
}


def error(description: str, serializer=ErrorSerializer) -> OpenApiResponse:
    """A documented error answer: its body (``{"detail": ...}`` unless said otherwise) and what it means."""
    return OpenApiResponse(response=serializer, description=description)


BAD_REQUEST = OpenApiResponse(
    response=VALIDATION_ERROR,
    description="The request is malformed or fails validation (the body names each field), or carries a NUL or "
    "another control character.",
)
UNAUTHORIZED = error("Credentials are missing or wrong, on a host whose first authentication class asks for them.")
FORBIDDEN = error("Credentials were wrong, or the caller may not do this.")
NOT_FOUND = error("No such object among those the caller may see.")
UNSUPPORTED_MEDIA = error("The body is not JSON.")
THROTTLED = error("Too many requests from this client; the Retry-After header says when to try again.")
UNAVAILABLE = error("The database is unavailable right now; try again later.")


def responses(
    ok: dict,
    *,
    body: bool = False,
    not_found: bool = False,
    extra: dict | None = None,
) -> dict:
    """The documented responses of one operation: its successes (``ok``), its own codes (``extra``) and the shared
    errors (``body``: it takes a JSON body; ``not_found``: it names an object in its path or body)."""
    out = {**ok, 400: BAD_REQUEST, 401: UNAUTHORIZED, 403: FORBIDDEN, 429: THROTTLED, 503: UNAVAILABLE}
    if body:
        out[415] = UNSUPPORTED_MEDIA
    if not_found:
        out[404] = NOT_FOUND
    out.update(extra or {})
    return dict(sorted(out.items()))


def _counted_clients() -> str:
    from adengine.conf import DEFAULTS

    limits, rates = DEFAULTS["TRACKING_RATE_LIMITS"][0], DEFAULTS["API_THROTTLE_RATES"][0]
    return (
        "**Which clients are counted.** Decisions are served to any client within its throttle, whatever its user "
        "agent; every ad served is logged as an impression (not billed). Every view and click (the view URL, "
        "`POST impressions/`, the click URL) is logged as an ad event with a status, and only `accepted` and "
        "`over_budget` events count as views and clicks (only `accepted` ones are billed):\n\n"
        "- `bot`: no User-Agent, one matching `ADENGINE['BOT_USER_AGENTS']` (headless browsers, load tools and "
        "scripting clients: curl, wget, python-requests, httpx, aiohttp, axios, node-fetch, undici, Go-http-client, "
        "Java, Postman...), or a crawler the maintained `crawlerdetect` list knows (Googlebot, bingbot...). An app's "
        "HTTP client (OkHttp, CFNetwork, Dart, Alamofire, Ktor, Dalvik) counts as a person when the ad came from "
        "this API's decisions, as a bot on a storefront ad. Test with your app's user agent, not curl's.\n"
        f"- `rate_limited`: beyond {limits['view']} views or {limits['click']} clicks a minute from one network "
        "(IPv4 /24, IPv6 /48; `ADENGINE['TRACKING_RATE_LIMITS']`), replays included.\n"
        "- `duplicate`: a second view or click of one impression (answered 409).\n"
        "- `over_budget`: counted, not billed (the campaign's budget is spent).\n\n"
        "A bot or an over-limit client is not told: the view is answered 200 (`counted: false`), the click still "
        "redirects. Throttles refuse with 429 and Retry-After, per client address (REMOTE_ADDR, or with "
        "`ADENGINE['TRUSTED_PROXIES']` the address the trusted proxies saw) or per user when logged in: "
        f"decisions {rates['decisions']}, impressions/why/personalisation {rates['tracking']} "
        "(`ADENGINE['API_THROTTLE_RATES']`), events 120/min (600/min per user)."
    )


COUNTED_CLIENTS = _counted_clients()
