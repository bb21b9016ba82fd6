"""Admin for creative assets and copy generation requests."""

from __future__ import annotations

import logging

from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from adengine.models import (
    CopywriterModel,
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
        "where_it_stands",
        "progress",
        "error",
        "model_name",
        "stats",
        "requested_by",
        "created_at",
        "started_at",
        "finished_at",
        "heartbeat_at",
        "queued",
        "attempts",
        "task_id",
        "review_link",
    ]
    inlines = [CreativeInline]

    def get_list_display(self, request):
        """The list with a "queue" column: place in line, progress and estimate, from one look at the queue."""
        from adengine.selectors.generation import queue_states

        states: dict = {}

        @admin.display(description=_("queue"))
        def queue(obj):
            if obj.pk not in states:  # the page's rows, read once (two queries) when the first row is drawn
                states.update(queue_states(GenerationRequest.objects.filter(status__in=["queued", "running"])))
            state = states.get(obj.pk)
            return state.describe() if state is not None else obj.get_status_display()

        return [*self.list_display[:5], queue, *self.list_display[5:]]

    @admin.display(description=_("where it stands"))
    def where_it_stands(self, obj):
        from adengine.selectors.generation import queue_state

        return queue_state(obj).describe()

    @admin.display(description=_("review"))
    def review_link(self, obj):
        from .review import review_url  # (review imports this module's RULE_NAMES)

        return format_html('<a href="{}">Review these variants</a>', review_url(obj.campaign_id, request_id=obj.pk))


RULE_NAMES = {
    "max_length": "length (display width)",
    "min_length": "not too short",
    "language": "the language's own script",
    "keyword": "a keyword or product name",
    "absolute_claims": "no absolute or superlative claims",
    "disparaging": "does not run the product down",
    "repetition": "no repetition",
    "fragment": "a sentence, not a fragment or keyword list",
    "grounded": "every claim stated by the campaign's facts",
    "contact_details": "no contact details",
    "html": "no HTML",
    "blocklist": "no blocked words",
    "prompt_echo": "no echo of the prompt",
    "product_fit": "about its product, not another",
    "fluency": "as fluent as the model's other variants",
    "truncated": "finished, not cut off",
    "near_duplicate": "not a near-duplicate of another asset",
}


@admin.register(Creative)
class CreativeAdmin(admin.ModelAdmin):
    list_display = [
        "text",
        "campaign",
        "language",
        "asset_type",
        "status",
        "passes_rules",
        "quality",
        "label",
        "source",
        "reasons",
        "review_link",
    ]
    list_filter = ["status", "language", "asset_type", "source", "passes_rules", "label", "campaign"]
    search_fields = ["text"]
    readonly_fields = [
        "preview",
        "passes_rules",
        "checks",
        "serving",
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

    @admin.display(description="review")
    def review_link(self, obj):
        from .review import review_url

        return format_html('<a href="{}">review page</a>', review_url(obj.campaign_id, creative_id=obj.pk))

    @admin.display(description="preview")
    def preview(self, obj):
        """The asset in each of its campaign's placements, with the best partner copy (adengine.admin.previews)."""
        if obj is None or obj.pk is None:
            return "Saved assets are previewed here, in each of the campaign's placements."
        from .previews import asset_preview

        return asset_preview(obj)

    @admin.display(description="quality score", ordering="score")
    def quality(self, obj):
        return "-" if obj.score is None else f"{obj.score:.2f}"

    @admin.display(description="why it is served")
    def serving(self, obj):
        """How the bandit sees the headline: its click rate so far and what its share of traffic rests on."""
        if obj.asset_type != Creative.AssetType.HEADLINE:
            if obj.status != Creative.Status.APPROVED:
                return "not served: only approved copy is"
            first = "a person's" if obj.source == Creative.Source.HUMAN else "a generated"
            return (
                f"{first} description: shown with the campaign's headlines; a person's description always comes "
                "before a generated one, then the best audience fit"
            )
        if obj.status != Creative.Status.APPROVED:
            return "not served: only approved headlines compete"
        if obj.ctr_alpha is None or obj.ctr_beta is None:
            return "competes from its prior until the strategy's next update"
        mean = obj.ctr_alpha / (obj.ctr_alpha + obj.ctr_beta)
        origin = (
            "its prior, capped at the campaign's best human-written headline"
            if obj.source == Creative.Source.GENERATED
            else "its prior from its audience fit"
        )
        return (
            f"competes by Thompson sampling: estimated CTR {mean:.2%} from {origin} and {obj.served} impressions "
            f"with {obj.clicked} clicks; label {obj.get_label_display()}"
        )

    @admin.display(description="checks")
    def checks(self, obj):
        """Every rule's result in words, with the facts that ground the copy's claims."""
        rows = [
            (RULE_NAMES.get(r["rule"], r["rule"]), "passed" if r.get("passed") else "failed", r.get("reason") or "")
            for r in obj.rule_results
        ]
        if not rows:
            return "not checked yet"
        return format_html(
            "<table><tr><th>rule</th><th>result</th><th>why</th></tr>{}</table>",
            format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", rows),
        )

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


@admin.register(CopywriterModel)
class CopywriterModelAdmin(ReadOnlyAdmin):
    """Fine-tuned copywriters (adengine_finetune_copywriter): how each did against the base, and which writes."""

    list_display = ["version", "is_active", "base", "held_out", "decision", "created_at"]
    list_filter = ["is_active"]
    actions = ["activate", "back_to_base"]

    @admin.display(description="held-out assets passing every rule, base -> fine-tuned")
    def held_out(self, obj):
        base, tuned = obj.metrics.get("base", {}).get("all", {}), obj.metrics.get("candidate", {}).get("all", {})
        if not base or not tuned:
            return "-"
        return (
            f"{base['passed']}/{base['variants']} ({base['pass_share']:.0%}) -> "
            f"{tuned['passed']}/{tuned['variants']} ({tuned['pass_share']:.0%})"
        )

    @admin.action(description="Write the shop's copy with this version")
    def activate(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Choose exactly one copywriter version.", messages.ERROR)
            return
        from adengine.services.copywriters import set_active

        chosen = set_active(version=queryset.get().version)
        self.message_user(request, f"{chosen.version} writes the copy from the next request on.")

    @admin.action(description="Go back to the configured base model")
    def back_to_base(self, request, queryset):
        from adengine.services.copywriters import set_active

        set_active(version=None)
        self.message_user(request, "The configured base model writes the copy from the next request on.")
