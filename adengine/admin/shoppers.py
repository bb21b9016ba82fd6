"""Admin for shoppers (interests in words, behaviour), product vectors and encoders."""

from __future__ import annotations

import logging

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Count
from django.utils.html import format_html, format_html_join

from adengine.models import (
    BehaviourEvent,
    EncoderModel,
    ProductVector,
    Shopper,
)

from .base import ReadOnlyAdmin

log = logging.getLogger(__name__)


@admin.register(Shopper)
class ShopperAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "user", "personalisation", "last_event_at", "interest_updated_at", "n_events"]
    list_filter = ["personalisation", ("user", admin.EmptyFieldListFilter)]
    search_fields = ["user__username", "anonymous_key"]
    readonly_fields = [
        "user",
        "anonymous_key",
        "personalisation",
        "created_at",
        "last_event_at",
        "interest_updated_at",
        "interest_model",
        "interest_events",
        "top_interests",
        "recent_behaviour",
    ]
    exclude = ["interest_vector", "interest_source_at"]
    list_select_related = ["user"]

    def has_delete_permission(self, request, obj=None):
        return True  # erasure on request

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_events=Count("events"))

    @admin.display(description="events", ordering="_events")
    def n_events(self, obj):
        return obj._events

    @admin.display(description="top interests (nearest categories and products)")
    def top_interests(self, obj):
        from adengine.selectors.audience import top_interests

        try:
            found = top_interests(obj)
        except Exception:
            log.exception("could not compute top interests of shopper %s", obj.pk)
            return "unavailable"
        if not found["products"]:
            return "no interest vector (no behaviour yet, or personalisation is off)"
        return format_html(
            "<p><strong>Categories:</strong> {}</p><ol>{}</ol>",
            ", ".join(found["categories"]),
            format_html_join(
                "", "<li>{} <small>({})</small></li>", ((title, f"{sim:.2f}") for title, sim in found["products"])
            ),
        )

    @admin.display(description="recent behaviour")
    def recent_behaviour(self, obj):
        rows = obj.events.order_by("-occurred_at")[:15]
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "",
                "<li>{} {} {}</li>",
                (
                    (e.occurred_at.strftime("%Y-%m-%d %H:%M"), e.get_kind_display(), e.query or e.product or "")
                    for e in rows
                ),
            ),
        )


@admin.register(BehaviourEvent)
class BehaviourEventAdmin(ReadOnlyAdmin):
    list_display = ["occurred_at", "shopper", "kind", "product", "query", "source"]
    list_filter = ["kind", "source"]
    date_hierarchy = "occurred_at"
    raw_id_fields = ["shopper", "product"]
    list_select_related = ["shopper", "product"]


@admin.register(ProductVector)
class ProductVectorAdmin(ReadOnlyAdmin):
    list_display = ["product", "model_version", "updated_at"]
    exclude = ["embedding"]
    list_select_related = ["product"]


@admin.register(EncoderModel)
class EncoderModelAdmin(ReadOnlyAdmin):
    list_display = ["version", "is_active", "created_at", "held_out"]
    actions = ["activate"]

    @admin.display(description="held-out HR@10 / NDCG@10, before -> after")
    def held_out(self, obj):
        b, a = obj.metrics.get("before", {}), obj.metrics.get("after", {})
        return f"{b.get('hr10', 0):.3f}/{b.get('ndcg10', 0):.3f} -> {a.get('hr10', 0):.3f}/{a.get('ndcg10', 0):.3f}"

    @admin.action(description="Switch to this encoder (re-embeds everything in the worker)")
    def activate(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Choose exactly one encoder version.", messages.ERROR)
            return
        from adengine.services.encoders import set_active
        from adengine.tasks import reembed_all

        set_active(version=queryset.get().version)
        transaction.on_commit(lambda: reembed_all.delay())
        self.message_user(request, "Switched; the worker is re-embedding products and shoppers.")
