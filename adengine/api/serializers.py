"""Serializers of the REST API."""

from __future__ import annotations

from django.utils import timezone
from rest_framework import serializers

from adengine.models import BehaviourEvent

from .lookups import product_by_key

MAX_BATCH = 100


class EventSerializer(serializers.Serializer):
    """One behaviour event sent by a web page or a mobile app."""

    kind = serializers.ChoiceField(choices=BehaviourEvent.Kind.choices)
    product = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=64,
        help_text="Primary key of the product (views, carts, purchases).",
    )
    query = serializers.CharField(required=False, allow_blank=True, max_length=500, help_text="Search text (searches).")
    quantity = serializers.IntegerField(required=False, min_value=1, max_value=1000, default=1)
    occurred_at = serializers.DateTimeField(required=False, help_text="Default: now. At most 7 days old.")

    def validate_occurred_at(self, value):
        now = timezone.now()
        if value > now + timezone.timedelta(minutes=5):
            raise serializers.ValidationError("occurred_at is in the future.")
        if value < now - timezone.timedelta(days=7):
            raise serializers.ValidationError("occurred_at is more than 7 days old.")
        return value

    def validate(self, attrs):
        kind = attrs["kind"]
        if kind == BehaviourEvent.Kind.PURCHASE:
            raise serializers.ValidationError(
                {"kind": "purchases are recorded from the shop's orders, not through the API."}
            )
        if kind == BehaviourEvent.Kind.SEARCH:
            if not (attrs.get("query") or "").strip():
                raise serializers.ValidationError({"query": "a search event needs a query."})
            attrs["product"] = None
            return attrs
        pk = attrs.get("product")
        if not pk:
            raise serializers.ValidationError({"product": f"a {kind} event needs a product."})
        product = product_by_key(pk)
        if product is None:
            raise serializers.ValidationError({"product": f"no product with SKU or id {pk!r}."})
        attrs["product"] = product
        return attrs


class EventBatchSerializer(serializers.Serializer):
    """Up to 100 events at once."""

    events = EventSerializer(many=True, allow_empty=False, max_length=MAX_BATCH)


class EventResultSerializer(serializers.Serializer):
    recorded = serializers.IntegerField(help_text="Events kept.")
    skipped = serializers.IntegerField(help_text="Events not kept (personalisation is off).")


class GenerateRequestSerializer(serializers.Serializer):
    """Ask for generated copy."""

    language = serializers.CharField(max_length=10)
    n = serializers.IntegerField(min_value=1, max_value=32, default=8)
    seed = serializers.IntegerField(min_value=0, max_value=2**31 - 1, default=0)


class GenerationRequestSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    campaign = serializers.IntegerField(source="campaign_id", read_only=True)
    language = serializers.CharField(read_only=True)
    n = serializers.IntegerField(read_only=True)
    status = serializers.CharField(read_only=True)
    progress = serializers.IntegerField(read_only=True)
    error = serializers.CharField(read_only=True)
    model_name = serializers.CharField(read_only=True)
    stats = serializers.JSONField(read_only=True)


class GenerationUnavailableSerializer(serializers.Serializer):
    """503: the broker was unreachable; the request is stored as failed with the reason."""

    detail = serializers.CharField(read_only=True)
    request = GenerationRequestSerializer(read_only=True)


class CreativeSerializer(serializers.Serializer):
    """An asset. ``text`` is untrusted model output: clients must escape it when they render it."""

    id = serializers.IntegerField(read_only=True)
    campaign = serializers.IntegerField(source="campaign_id", read_only=True)
    asset_type = serializers.CharField(read_only=True)
    language = serializers.CharField(read_only=True)
    text = serializers.CharField(read_only=True)
    source = serializers.CharField(read_only=True)
    status = serializers.CharField(read_only=True)
    passes_rules = serializers.BooleanField(read_only=True)
    rejection_reasons = serializers.ListField(child=serializers.CharField(), read_only=True)
    score = serializers.FloatField(read_only=True, allow_null=True)
    audience_fit = serializers.FloatField(read_only=True, allow_null=True)
    product_fit = serializers.FloatField(read_only=True, allow_null=True)
    label = serializers.CharField(read_only=True)
    model_name = serializers.CharField(read_only=True)
    prompt_version = serializers.CharField(read_only=True)


class HumanCreativeSerializer(serializers.Serializer):
    """An asset written by a person; it goes through the same rules."""

    campaign = serializers.IntegerField()
    asset_type = serializers.ChoiceField(choices=["headline", "description"])
    language = serializers.CharField(max_length=10)
    text = serializers.CharField(max_length=300)
