"""The API's root: every endpoint with its absolute URL, its methods and what it does, read from the URLconf."""

from __future__ import annotations

import re

from django.urls import URLPattern, reverse
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from .base import AdengineAPIView, extend_schema
from .schema import responses

METHODS = ("get", "post", "put", "patch", "delete")
_CONVERTER = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")
# the schema and docs views are drf-spectacular's: their docstrings do not describe them to an app developer
DESCRIPTIONS = {
    "schema": "The OpenAPI 3 schema of this API (?format=json for JSON).",
    "docs": "Swagger UI over the schema.",
}


class EndpointSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="The URL's name, in the adengine-api namespace.")
    url = serializers.CharField(help_text="Absolute URL; {name} marks a path parameter.")
    methods = serializers.ListField(child=serializers.CharField(), help_text="HTTP methods it answers.")
    description = serializers.CharField(allow_blank=True)


class RootSerializer(serializers.Serializer):
    name = serializers.CharField()
    version = serializers.CharField()
    docs = serializers.CharField(help_text="Absolute URL of the Swagger UI.")
    schema = serializers.CharField(help_text="Absolute URL of the OpenAPI schema.")
    endpoints = EndpointSerializer(many=True)


def endpoints(prefix: str) -> list[dict]:
    """The API's named endpoints under ``prefix`` (the root's own path): name, path template, methods, summary."""
    from . import urls

    found = []
    for pattern in urls.urlpatterns:
        if not isinstance(pattern, URLPattern) or not pattern.name or pattern.name == "root":
            continue
        view = getattr(pattern.callback, "view_class", None)
        methods = [m.upper() for m in METHODS if view is not None and hasattr(view, m)]
        doc = (view.__doc__ or "").strip() if view is not None else ""
        found.append(
            {
                "name": pattern.name,
                "url": prefix + _CONVERTER.sub(r"{\1}", str(pattern.pattern)),
                "methods": methods,
                "description": DESCRIPTIONS.get(pattern.name) or " ".join(doc.split()),
            }
        )
    return found


class RootView(AdengineAPIView):
    """This list: every endpoint of the API with its URL."""

    permission_classes = [AllowAny]
    throttle_classes = []  # nothing but the URLconf behind it

    @extend_schema(
        responses=responses({200: RootSerializer}),
        description="Every endpoint of adengine's API with its absolute URL ({name} marks a path parameter), the "
        "methods it answers and what it does; docs and schema link the Swagger UI and the OpenAPI schema.",
    )
    def get(self, request):
        prefix = request.build_absolute_uri(reverse("adengine-api:root"))
        return Response(
            {
                "name": "adengine API",
                "version": "1",
                "docs": request.build_absolute_uri(reverse("adengine-api:docs")),
                "schema": request.build_absolute_uri(reverse("adengine-api:schema")),
                "endpoints": endpoints(prefix),
            }
        )
