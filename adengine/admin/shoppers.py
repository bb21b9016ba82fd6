"""Admin for shoppers (interests in words, behaviour), product vectors and encoders."""

from __future__ import annotations

import logging

from django.contrib import admin, messages
from django.db.models import Count
from django.utils.html import format_html, format_html_join

from adengine.models import (
    BehaviourEvent,
    EncoderModel,
    InterestModel,
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
    exclude = ["interest_vector", "interest_source_at", "interest_hybrid"]
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
    list_display = ["product", "model_version", "hybrid_model", "popularity", "updated_at"]
    exclude = ["embedding", "factors", "hybrid"]
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
        from adengine.queues import enqueue_after_commit
        from adengine.services.encoders import set_active

        set_active(version=queryset.get().version)
        enqueue_after_commit("adengine.reembed_all")
        self.message_user(request, "Switched; the worker is re-embedding products and shoppers.")


def _figure(r: dict | None) -> str:
    if not r:
        return "-"
    return f"{r['hr10']:.3f} / {r['ndcg10']:.3f}"


@admin.register(InterestModel)
class InterestModelAdmin(ReadOnlyAdmin):
    """The hybrid interest models the scheduled training fitted: weights, settings and the figures behind them."""

    list_display = ["version", "is_active", "weights_in_words", "blend_figure", "live_figure", "decision", "created_at"]
    list_filter = ["is_active"]
    readonly_fields = [
        "version",
        "is_active",
        "weights_in_words",
        "params",
        "figures",
        "notes",
        "events",
        "shoppers",
        "decision",
        "created_at",
    ]
    exclude = ["weights", "spread", "content_mean", "factor_scale", "gram", "metrics"]

    @admin.display(description="weights")
    def weights_in_words(self, obj):
        return ", ".join(f"{k} {v:.1f}" for k, v in (obj.weights or {}).items())

    @admin.display(description="validation HR@10 / NDCG@10")
    def blend_figure(self, obj):
        return _figure((obj.metrics.get("validation") or {}).get("blend"))

    @admin.display(description="live model then")
    def live_figure(self, obj):
        return _figure(obj.metrics.get("live"))

    @admin.display(description="validation figures")
    def figures(self, obj):
        rows = dict(obj.metrics.get("validation") or {})
        if obj.metrics.get("live"):
            rows["live model"] = obj.metrics["live"]
        if not rows:
            return "none (too little behaviour to validate)"
        return format_html(
            "<table><tr><th>part</th><th>HR@10</th><th>NDCG@10</th><th>MRR</th></tr>{}</table>"
            "<p>{} held-out shoppers</p>",
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                (
                    (name, f"{r['hr10']:.3f}", f"{r['ndcg10']:.3f}", f"{r.get('mrr', 0):.3f}")
                    for name, r in rows.items()
                ),
            ),
            obj.metrics.get("validation_cases", 0),
        )
