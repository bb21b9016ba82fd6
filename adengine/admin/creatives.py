"""Admin for creative assets and copy generation requests."""

from __future__ import annotations

import logging

from django.contrib import admin, messages

from adengine.models import (
    Creative,
    GenerationRequest,
)

from .base import ReadOnlyAdmin

log = logging.getLogger(__name__)


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

    list_display = ["created_at", "campaign", "language", "n", "status", "progress", "attempts", "model_name", "error"]
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
        "heartbeat_at",
        "queued",
        "attempts",
        "task_id",
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
        from adengine.services.creatives import CreativeRequestError, add_human_asset, edit_asset

        if change:
            if "text" in form.changed_data:
                # new words run the rules again and go back to review: approved text is what is served
                stored = type(obj).objects.get(pk=obj.pk)
                try:
                    edited = edit_asset(creative=stored, text=obj.text, user=request.user)
                except CreativeRequestError as exc:
                    self.message_user(request, str(exc), messages.ERROR)
                    return
                self.message_user(
                    request,
                    "The new text passed the rules and waits for review."
                    if edited.passes_rules
                    else "The new text fails the rules: " + "; ".join(edited.rejection_reasons),
                    messages.INFO if edited.passes_rules else messages.WARNING,
                )
                return
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
