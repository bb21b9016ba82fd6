"""What every adengine API view shares: JSON bodies; NUL or other control bytes are a 400, never a 500; a database
outage is a 503; an unknown path under the API is a JSON 404."""

from __future__ import annotations

import base64
import binascii
import logging
import re

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import extend_schema as spectacular_extend_schema
from rest_framework import status
from rest_framework.exceptions import AuthenticationFailed, ParseError, Throttled
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.schemas.inspectors import DefaultSchema
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

log = logging.getLogger(__name__)

_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")  # C0 control characters but tab, newline and return


def _has_control(text: str) -> bool:
    return _CONTROL.search(text) is not None  # every API request checks its query: one scan in C


def check_request_text(request) -> None:
    """ParseError (400) when the path, the query or Basic credentials carry control bytes (PostgreSQL refuses NUL)."""
    if _has_control(request.path) or any(_has_control(k) or _has_control(v) for k, v in request.GET.lists() for v in v):
        raise ParseError("the request contains a NUL or another control character.")
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if _has_control(header):
        raise ParseError("the Authorization header contains a control character.")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "basic" and credentials:
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            return  # malformed: the authentication class answers it
        if _has_control(decoded):
            raise ParseError("the Basic credentials contain a NUL or another control character.")


class SpectacularSchema(DefaultSchema):
    """drf-spectacular's inspector for adengine's views whatever the host's ``DEFAULT_SCHEMA_CLASS``.

    A host that sets none (DRF's default is the legacy CoreAPI inspector) would otherwise get a 500 from
    adengine's schema endpoint; a host's own subclass of drf-spectacular's ``AutoSchema`` is kept.
    """

    def __get__(self, instance, owner):
        result = super(DefaultSchema, self).__get__(instance, owner)
        if not isinstance(result, DefaultSchema):
            return result  # set on the view instance
        inspector = _inspector_class()()
        inspector.view = instance
        return inspector


def extend_schema(**kwargs):
    """drf-spectacular's ``extend_schema`` for a view method, built on drf-spectacular's inspector.

    drf-spectacular builds a method's schema class on the host's ``DEFAULT_SCHEMA_CLASS``; when the host set
    none, that is DRF's legacy inspector and the schema endpoint fails. Naming the base on the method first
    (drf-spectacular's own convention, ``kwargs["schema"]``) makes it independent of the host's setting.
    """
    decorate = spectacular_extend_schema(**kwargs)

    def decorator(f):
        if not isinstance(getattr(f, "kwargs", {}).get("schema"), type):
            f.kwargs = {**getattr(f, "kwargs", {}), "schema": _inspector_class()}
        return decorate(f)

    return decorator


def _inspector_class() -> type[AutoSchema]:
    configured = api_settings.DEFAULT_SCHEMA_CLASS
    return configured if isinstance(configured, type) and issubclass(configured, AutoSchema) else AutoSchema


MAX_JSON_DEPTH = 20  # adengine's bodies nest three or four levels; deeper is an attack on the parser's recursion


def _body_problem(data) -> str:
    """Why a parsed JSON body is refused ("" when it is not): nested deeper than MAX_JSON_DEPTH, or a string (key
    or value) with a NUL or another control character but tab, newline and return. Walked without recursion."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if _has_control(value):
                return "the body contains a NUL or another control character."
        elif isinstance(value, dict | list):
            if depth > MAX_JSON_DEPTH:
                return f"the body nests deeper than {MAX_JSON_DEPTH} levels."
            items = value.items() if isinstance(value, dict) else ((None, v) for v in value)
            for key, item in items:
                if key is not None:
                    stack.append((key, depth))
                stack.append((item, depth + 1))
    return ""


class StrictJSONParser(JSONParser):
    """JSON that adengine can store and walk: a 400, never a 500, for a NUL or another control character
    (PostgreSQL cannot store a NUL) or for nesting deep enough to exhaust the decoder's recursion."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(f"JSON parse error - the body nests deeper than {MAX_JSON_DEPTH} levels.") from None
        problem = _body_problem(data)
        if problem:
            raise ParseError(problem)
        return data


class SafeRequestMixin:
    """For any DRF view: JSON bodies only; bad bytes are refused before authentication touches the database;
    credentials are not checked for an address that failed too often lately (``FailedSignInGuard``); a database
    outage (from authentication too) is a 503 that says so."""

    parser_classes = [StrictJSONParser]

    schema = SpectacularSchema()

    def initial(self, request, *args, **kwargs):
        check_request_text(request)
        super().initial(request, *args, **kwargs)

    def perform_authentication(self, request):
        guard = FailedSignInGuard()
        if request.META.get("HTTP_AUTHORIZATION") and not guard.allow_attempt(request, self):
            raise Throttled(guard.wait(), detail="Too many failed sign-ins from this address; try again later.")
        try:
            super().perform_authentication(request)
        except AuthenticationFailed:
            guard.record_failure()
            raise

    def handle_exception(self, exc):
        if isinstance(exc, DatabaseError):
            log.error("%s failed: database unavailable: %s", type(self).__name__, exc)
            return Response({"detail": "unavailable right now; try again later."}, status=503)
        if isinstance(exc, RequestDataTooBig):  # Django's own answer would be its HTML error page
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            return Response({"detail": f"the body is larger than the {limit} bytes this shop accepts."}, status=400)
        return super().handle_exception(exc)


class AdengineAPIView(SafeRequestMixin, APIView):
    """Base of adengine's API views: a database outage is a 503 with a message, never a 500."""

    unavailable_message = "adengine is unavailable right now; try again shortly."

    def handle_exception(self, exc):
        if isinstance(exc, DatabaseError):  # also from authentication, before the handler runs
            log.error("%s failed: database unavailable: %s", type(self).__name__, exc)
            return Response({"detail": self.unavailable_message}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        return super().handle_exception(exc)


class ClientIPThrottleMixin:
    """Throttle per client address as ``adengine.net.client_ip`` reads it: never a client-written X-Forwarded-For."""

    def get_ident(self, request):
        from adengine.net import client_ip

        return client_ip(request) or ""


class FailedSignInGuard(ClientIPThrottleMixin, SimpleRateThrottle):
    """Failed sign-ins (wrong Basic credentials, a bad token) per client address, at the rate
    ``ADENGINE["API_THROTTLE_RATES"]["sign_in_failures"]``: past it, credentials from that address are not checked
    (a 429) until the window moves on. DRF authenticates before it throttles, so without this a password could be
    guessed as fast as the server answers. Counted in the host's cache, as DRF's throttles are."""

    scope = "sign_in_failures"

    def get_rate(self):
        from adengine.conf import settings as ad_settings

        return ad_settings.API_THROTTLE_RATES.get(self.scope)

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def allow_attempt(self, request, view) -> bool:
        """Whether credentials from this address may be checked now (counts nothing)."""
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        self.now = self.timer()
        self.history = [t for t in self.cache.get(self.key, []) if t > self.now - self.duration]
        return len(self.history) < self.num_requests

    def record_failure(self) -> None:
        if self.rate is not None and getattr(self, "key", None):
            self.history.insert(0, self.now)
            self.cache.set(self.key, self.history, self.duration)


@csrf_exempt  # it changes nothing; a POST to an unknown path is a 404 too, not the CSRF failure page
def not_found(request, *args, **kwargs):
    """Any other path under the API: a JSON 404, as the API's own 404s (never the host's HTML page)."""
    return JsonResponse({"detail": "Not found."}, status=status.HTTP_404_NOT_FOUND)
