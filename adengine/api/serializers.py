"""Serializers of the REST API."""

from __future__ import annotations

from django.core.validators import RegexValidator
from django.utils import timezone, translation
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from adengine.models import AdEvent, BehaviourEvent, Creative

from .fields import StrictCharField, StrictIntegerField
from .lookups import ID_MAX, UnknownProduct, product_by_key

MAX_BATCH = 100

# A character that is neither white space (as Python's str.strip() and JSON Schema's \s both see it) nor a control
# character: a text field must hold one, else trimming leaves nothing. Spelt out so that the server and the schema's
# regular expressions agree exactly.
_SPACE = "\t\n\x0b\x0c\r \x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
NOT_BLANK = f"[^{_SPACE}]"
not_blank = RegexValidator(NOT_BLANK, "This field may not be blank.")
# ad copy loses its surrounding quotes too (compliance.normalise)
not_blank_copy = RegexValidator(f"[^{_SPACE}\"'“”‘’「」]", "This field needs a word, not only spaces and quotes.")


def _languages() -> list[str]:
    from adengine.services.creatives import languages

    return languages()


class LanguageField(serializers.ChoiceField):
    """One of the languages adengine writes copy in (``ADENGINE['LANGUAGES']`` with a prompt template)."""

    def __init__(self, **kwargs):
        known = _languages()
        message = f'unknown language "{{input}}"; known: {", ".join(known)}.'
        kwargs.setdefault("error_messages", {"invalid_choice": message})
        super().__init__(choices=known, **kwargs)


class EventSerializer(serializers.Serializer):
    """One behaviour event sent by a web page or a mobile app."""

    kind = serializers.ChoiceField(
        choices=[k for k in BehaviourEvent.Kind.choices if k[0] != BehaviourEvent.Kind.PURCHASE],
        error_messages={
            "invalid_choice": '"{input}" is not a valid choice (purchases are recorded from the shop\'s orders, '
            "not through the API)."
        },
    )
    product = StrictCharField(
        required=False,
        allow_blank=True,
        max_length=64,
        help_text="The product: its SKU (the shop's own key) or its id (views and carts need one; an unknown or "
        "ambiguous one is a 400).",
    )
    query = StrictCharField(
        required=False, allow_blank=True, max_length=500, help_text="Search text (a search needs one)."
    )
    quantity = StrictIntegerField(required=False, min_value=1, max_value=1000, default=1)
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
        if kind == BehaviourEvent.Kind.SEARCH:
            if not (attrs.get("query") or "").strip():
                raise serializers.ValidationError({"query": "a search event needs a query."})
            attrs["product"] = None
            return attrs
        pk = attrs.get("product")
        if not pk:
            raise serializers.ValidationError({"product": f"a {kind} event needs a product."})
        try:
            attrs["product"] = product_by_key(pk)
        except UnknownProduct as exc:
            raise serializers.ValidationError({"product": str(exc)}) from None
        return attrs


class EventBatchSerializer(serializers.Serializer):
    """Up to 100 events at once."""

    # a ListField (not many=True) so that the schema shows minItems and maxItems
    events = serializers.ListField(child=EventSerializer(), allow_empty=False, min_length=1, max_length=MAX_BATCH)


class EventResultSerializer(serializers.Serializer):
    recorded = serializers.IntegerField(help_text="Events kept.")
    skipped = serializers.IntegerField(help_text="Events not kept (personalisation is off).")


class GenerateRequestSerializer(serializers.Serializer):
    """Ask for generated copy."""

    language = LanguageField()
    n = StrictIntegerField(min_value=1, max_value=32, default=8)
    seed = StrictIntegerField(min_value=0, max_value=2**31 - 1, default=0)


class QueueStateSerializer(serializers.Serializer):
    """Where a copy request stands: its place in line while queued, its progress while written, and an estimate."""

    queue = serializers.CharField(read_only=True, help_text="The Celery queue it waits on.")
    position = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="1: the next to start; null unless queued."
    )
    ahead = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="Queued requests before it; null unless queued."
    )
    running = serializers.IntegerField(read_only=True, help_text="Requests being written now.")
    elapsed_seconds = serializers.FloatField(
        read_only=True, allow_null=True, help_text="Seconds since a worker started it; null unless running."
    )
    remaining_seconds = serializers.FloatField(
        read_only=True,
        allow_null=True,
        help_text="Estimated seconds until it is done (the median pace of the last finished requests, or its own "
        "rate while running); null when finished or when no request has finished yet to learn from.",
    )
    message = serializers.CharField(source="describe", read_only=True, help_text="The same, in words.")


class GenerationRequestSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    campaign = serializers.IntegerField(source="campaign_id", read_only=True)
    language = serializers.CharField(read_only=True)
    n = serializers.IntegerField(read_only=True)
    status = serializers.CharField(read_only=True)
    progress = serializers.IntegerField(read_only=True, help_text="Variants written so far, of n.")
    error = serializers.CharField(read_only=True)
    model_name = serializers.CharField(read_only=True)
    stats = serializers.JSONField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    started_at = serializers.DateTimeField(read_only=True, allow_null=True)
    finished_at = serializers.DateTimeField(read_only=True, allow_null=True)
    queue = serializers.SerializerMethodField()

    @extend_schema_field(QueueStateSerializer)
    def get_queue(self, obj) -> dict:
        from adengine.selectors.generation import queue_state

        with translation.override("en"):  # the API's own messages stay English (README)
            return QueueStateSerializer(queue_state(obj)).data


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

    campaign = StrictIntegerField(min_value=0, max_value=ID_MAX, help_text="One of your campaigns.")
    asset_type = serializers.ChoiceField(choices=Creative.AssetType.choices)
    language = LanguageField()
    text = StrictCharField(max_length=300, validators=[not_blank_copy])


class CreativeQuerySerializer(serializers.Serializer):
    """Filters of the asset list."""

    campaign = StrictIntegerField(query=True, required=False, min_value=0, max_value=ID_MAX, help_text="A campaign id.")
    status = serializers.ChoiceField(choices=Creative.Status.choices, required=False)
    language = serializers.CharField(required=False, max_length=10, allow_blank=True)
    asset_type = serializers.ChoiceField(choices=Creative.AssetType.choices, required=False)


# --- response bodies (for the schema: the views build these dicts themselves) ---------------------------------------


class AdProductSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="The same as product_id (its first name, kept for existing clients).")
    product_id = serializers.CharField(help_text="The product's id (primary key).")
    product_key = serializers.CharField(help_text="The shop's own key of the product (its SKU), else its id.")
    title = serializers.CharField()
    price = serializers.CharField(allow_null=True, help_text="Decimal, in the currency below.")
    currency = serializers.CharField(allow_blank=True, help_text="ISO 4217 code of the price, or empty.")
    price_text = serializers.CharField(allow_blank=True, help_text="The price as the ad shows it, e.g. ¥99.00.")
    image_url = serializers.CharField(allow_blank=True, help_text="Absolute URL of the product's image, or empty.")
    url = serializers.CharField(help_text="Absolute URL of the product's page.")


class AdSerializer(serializers.Serializer):
    """One chosen ad; its texts are untrusted model output: escape them when rendering. Every URL is absolute."""

    impression = serializers.CharField(help_text="The impression's one-time nonce (hex).")
    campaign_id = serializers.IntegerField()
    advertiser = serializers.CharField()
    sponsored = serializers.BooleanField(help_text="Label it 'Sponsored' when true.")
    house = serializers.BooleanField(help_text="A house ad (the shop's own, never billed).")
    headline = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    language = serializers.CharField()
    position = serializers.IntegerField(min_value=0)
    product = AdProductSerializer(allow_null=True)
    view_url = serializers.URLField(help_text="Call (GET) when the ad is shown, or POST its token to impressions/.")
    click_url = serializers.URLField(
        help_text="Open when the ad is tapped; it counts the click and redirects to the landing page."
    )
    why_url = serializers.URLField(help_text='The "Why this ad?" page.')
    landing_url = serializers.CharField(
        help_text="Where the click URL leads (absolute). Open the click URL, not this, so that the click is counted."
    )


class DecisionSerializer(serializers.Serializer):
    decision_id = serializers.UUIDField()
    placement = serializers.CharField()
    format = serializers.ChoiceField(choices=["text", "product", "banner"])
    personalised = serializers.BooleanField(help_text="The shopper's interests took part in the choice.")
    ads = AdSerializer(many=True, help_text="Empty when no ad is eligible or serving is switched off.")


class TrackResultSerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=[s for s, _ in AdEvent.Status.choices], help_text="How the event was logged (duplicate: a replay)."
    )
    counted = serializers.BooleanField(help_text="Counted (and billed, for CPM) as a view.")


class WhyTargetingSerializer(serializers.Serializer):
    description = serializers.CharField(allow_blank=True)
    keywords = serializers.ListField(child=serializers.CharField())
    categories = serializers.ListField(child=serializers.CharField())
    audience_threshold = serializers.FloatField(allow_null=True)


class WhyPageSerializer(serializers.Serializer):
    page = serializers.CharField(allow_blank=True)
    category = serializers.CharField(allow_blank=True)
    query = serializers.CharField(allow_blank=True, help_text="Only for the shopper who saw the ad; else empty.")
    promoted_product = serializers.CharField(required=False, allow_blank=True, help_text="Its title.")
    promoted_product_id = serializers.CharField(required=False, help_text="Its id (primary key).")
    promoted_product_key = serializers.CharField(required=False, help_text="The shop's own key (its SKU), else its id.")


class WhyInterestSerializer(serializers.Serializer):
    activity = serializers.CharField()
    item = serializers.CharField()
    similarity = serializers.FloatField()


class WhySerializer(serializers.Serializer):
    advertiser = serializers.CharField()
    campaign = serializers.CharField()
    sponsored = serializers.BooleanField()
    targeting = WhyTargetingSerializer()
    page_context = WhyPageSerializer()
    reasons = serializers.ListField(
        child=serializers.CharField(), help_text="What decided this impression, in words, from what was logged."
    )
    personalised = serializers.BooleanField()
    your_matching_interests = WhyInterestSerializer(many=True, help_text="Only for the shopper who saw the ad.")
    personalisation_allowed = serializers.BooleanField(allow_null=True)
    ranking = serializers.CharField()


class PersonalisationStateSerializer(serializers.Serializer):
    allowed = serializers.BooleanField(help_text="Whether the shopper gets personalised ads.")


class StatsRowSerializer(serializers.Serializer):
    impressions = serializers.IntegerField()
    views = serializers.IntegerField()
    clicks = serializers.IntegerField(help_text="Counted clicks (bots, replays and floods excluded).")
    conversions = serializers.IntegerField()
    spend = serializers.FloatField()
    revenue = serializers.FloatField()
    ctr = serializers.FloatField(allow_null=True)
    conversion_rate = serializers.FloatField(allow_null=True)
    roas = serializers.FloatField(allow_null=True)


class StatsDaySerializer(StatsRowSerializer):
    day = serializers.DateField()


class CampaignStatsSerializer(serializers.Serializer):
    campaign = serializers.IntegerField()
    spent_total = serializers.CharField(help_text="Decimal.")
    total_budget = serializers.CharField(help_text="Decimal.")
    totals = StatsRowSerializer()
    by_day = StatsDaySerializer(many=True)
