"""What every adengine API view shares: requests with NUL or other control bytes are a 400, never a 500."""

from __future__ import annotations

import base64
import binascii
import logging

from django.db import DatabaseError
from rest_framework import status
from rest_framework.exceptions import ParseError
from rest_framework.response import Response
from rest_framework.views import APIView

log = logging.getLogger(__name__)

_FORBIDDEN = {chr(c) for c in range(32)} - {"\t", "\n", "\r"}


def _has_control(text: str) -> bool:
    return any(ch in _FORBIDDEN for ch in text)


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


class SafeRequestMixin:
    """For any DRF view: bad bytes are refused before authentication touches the database."""

    def initial(self, request, *args, **kwargs):
        check_request_text(request)
        super().initial(request, *args, **kwargs)


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
