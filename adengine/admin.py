"""Django admin: shoppers with their interests in words, behaviour, encoders, campaigns and audiences."""

from __future__ import annotations

import logging

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Count
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from adengine.models import (
    Advertiser,
    BehaviourEvent,
    Campaign,
    Creative,
    EncoderModel,
    GenerationRequest,
    ProductVector,
    Shopper,
)

log = logging.getLogger(__name__)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


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


@admin.register(Advertiser)
class AdvertiserAdmin(admin.ModelAdmin):
    list_display = ["name", "created_at"]
    search_fields = ["name"]
    filter_horizontal = ["managers"]


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ["name", "advertiser", "status", "created_at", "audience_link", "assets"]
    list_filter = ["status", "advertiser"]
    search_fields = ["name", "description"]
    autocomplete_fields = ["advertiser"]
    raw_id_fields = ["promoted_products"]
    actions = ["generate_copy"]

    @admin.display(description="assets")
    def assets(self, obj):
        url = reverse("admin:adengine_creative_changelist") + f"?campaign__id__exact={obj.pk}"
        return format_html('<a href="{}">assets</a>', url)

    @admin.action(description="Generate copy (8 variants per campaign language, in the worker)")
    def generate_copy(self, request, queryset):
        from adengine.services.creatives import CreativeRequestError, request_copy

        made = 0
        for campaign in queryset:
            for language in campaign.languages or ["en"]:
                try:
                    request_copy(campaign=campaign, language=language, n=8, user=request.user)
                    made += 1
                except CreativeRequestError as exc:
                    self.message_user(request, f"{campaign}: {exc}", messages.ERROR)
        if made:
            url = reverse("admin:adengine_generationrequest_changelist")
            self.message_user(
                request,
                format_html(
                    'Queued {} request(s); follow their progress under <a href="{}">copy generation requests</a>.',
                    made,
                    url,
                ),
            )

    def get_urls(self):
        return [
            path(
                "<int:pk>/audience/", self.admin_site.admin_view(self.audience_view), name="adengine_campaign_audience"
            ),
            *super().get_urls(),
        ]

    @admin.display(description="audience")
    def audience_link(self, obj):
        return format_html('<a href="{}">preview</a>', reverse("admin:adengine_campaign_audience", args=[obj.pk]))

    def audience_view(self, request, pk: int):
        """The campaign's nearest shoppers and the behaviour that put each one there."""
        from adengine.selectors.audience import campaign_audience, target_vector, why_in_audience

        campaign = get_object_or_404(Campaign, pk=pk)
        days = request.GET.get("active_days")
        try:
            active_days = float(days) if days else None
            k = min(max(int(request.GET.get("k", 50)), 1), 500)
        except ValueError:
            active_days, k = None, 50
            messages.error(request, "k and active_days must be numbers; showing the defaults.")
        rows, error = [], ""
        try:
            vector = target_vector(campaign)
            members = campaign_audience(campaign, k=k, active_within_days=active_days) if vector is not None else []
            rows = [(m, why_in_audience(m.shopper, vector)) for m in members]
            if vector is None:
                error = "Give the campaign a description, keywords or promoted products to find its audience."
        except Exception as exc:
            log.exception("audience preview of campaign %s failed", pk)
            error = f"The audience could not be computed: {exc}"
        context = {
            **self.admin_site.each_context(request),
            "campaign": campaign,
            "rows": rows,
            "error": error,
            "k": k,
            "active_days": days or "",
            "opts": self.model._meta,
            "title": f"Audience of {campaign}",
        }
        return TemplateResponse(request, "adengine/admin/campaign_audience.html", context)


class CreativeInline(admin.TabularInline):
    model = Creative
    fields = ["asset_type", "text", "status", "passes_rules", "reasons", "score", "audience_fit", "product_fit"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["asset_type", "-passes_rules", "-score"]

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description="rule results")
    def reasons(self, obj):
        return "; ".join(obj.rejection_reasons) or "all rules passed"


@admin.register(GenerationRequest)
class GenerationRequestAdmin(ReadOnlyAdmin):
    """Requests with progress; the change page shows the variants side by side with rules and scores."""

    list_display = ["created_at", "campaign", "language", "n", "status", "progress", "model_name", "error"]
    list_filter = ["status", "language"]
    readonly_fields = [
        "campaign",
        "language",
        "n",
        "seed",
        "status",
        "progress",
        "error",
        "model_name",
        "stats",
        "requested_by",
        "created_at",
        "finished_at",
    ]
    inlines = [CreativeInline]


@admin.register(Creative)
class CreativeAdmin(admin.ModelAdmin):
    list_display = [
        "text",
        "campaign",
        "language",
        "asset_type",
        "status",
        "passes_rules",
        "score",
        "label",
        "source",
        "reasons",
    ]
    list_filter = ["status", "language", "asset_type", "source", "passes_rules", "label", "campaign"]
    search_fields = ["text"]
    readonly_fields = [
        "passes_rules",
        "rule_results",
        "audience_fit",
        "product_fit",
        "score",
        "label",
        "model_name",
        "prompt_version",
        "request",
        "source",
        "reviewed_by",
        "created_at",
        "updated_at",
    ]
    fields = ["campaign", "asset_type", "language", "text", "status", *readonly_fields]
    actions = ["approve", "reject"]
    list_select_related = ["campaign"]

    @admin.display(description="rule results")
    def reasons(self, obj):
        return "; ".join(obj.rejection_reasons) or "all rules passed"

    def save_model(self, request, obj, form, change):
        """A person's asset goes through the same rules and ranking as a generated one."""
        from adengine.services.creatives import CreativeRequestError, add_human_asset

        if change:
            super().save_model(request, obj, form, change)
            return
        try:
            created = add_human_asset(
                campaign=obj.campaign,
                asset_type=obj.asset_type,
                language=obj.language,
                text=obj.text,
                user=request.user,
            )
            obj.pk = created.pk
        except CreativeRequestError as exc:
            self.message_user(request, str(exc), messages.ERROR)

    @admin.action(description="Approve (only assets that pass every rule)")
    def approve(self, request, queryset):
        from adengine.services.creatives import review

        n = review(creatives=queryset, approve=True, user=request.user)
        skipped = queryset.filter(passes_rules=False).count()
        self.message_user(
            request, f"Approved {n}." + (f" {skipped} fail the rules and stay rejected." if skipped else "")
        )

    @admin.action(description="Reject")
    def reject(self, request, queryset):
        from adengine.services.creatives import review

        self.message_user(request, f"Rejected {review(creatives=queryset, approve=False, user=request.user)}.")
