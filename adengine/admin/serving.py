"""Admin for placements and the serving log: impressions with propensities, views and clicks, conversions."""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join

from adengine.models import (
    AdEvent,
    ClickModel,
    Conversion,
    DailyStats,
    Experiment,
    HourlyStats,
    Impression,
    Placement,
    StrategyState,
)

from .base import ReadOnlyAdmin


@admin.register(Placement)
class PlacementAdmin(admin.ModelAdmin):
    list_display = ["key", "name", "format", "max_ads", "allow_house_ads", "is_active"]
    list_editable = ["is_active"]
    search_fields = ["key", "name"]


@admin.register(Impression)
class ImpressionAdmin(ReadOnlyAdmin):
    list_display = ["served_at", "placement", "campaign", "creative", "position", "propensity", "predicted_ctr",
                    "personalised", "viewed_at"]  # fmt: skip
    list_filter = ["placement", "personalised", "policy", "campaign"]
    date_hierarchy = "served_at"
    list_select_related = ["placement", "campaign__advertiser", "creative"]
    raw_id_fields = ["shopper", "creative", "description", "product"]
    show_full_result_count = False


@admin.register(AdEvent)
class AdEventAdmin(ReadOnlyAdmin):
    list_display = ["occurred_at", "kind", "status", "charge", "campaign", "impression", "ip"]
    list_filter = ["kind", "status", "campaign"]
    date_hierarchy = "occurred_at"
    list_select_related = ["campaign__advertiser"]
    raw_id_fields = ["impression"]
    show_full_result_count = False


@admin.register(Conversion)
class ConversionAdmin(ReadOnlyAdmin):
    list_display = ["ordered_at", "order_key", "campaign", "revenue", "shopper"]
    list_filter = ["campaign"]
    date_hierarchy = "ordered_at"
    raw_id_fields = ["impression", "click", "shopper"]


@admin.register(StrategyState)
class StrategyStateAdmin(ReadOnlyAdmin):
    list_display = ["key", "impression_id", "event_id", "conversion_id", "updated_at", "last_result", "click_model_at",
                    "click_model_note"]  # fmt: skip


def _pct(x) -> str:
    return "-" if x is None else f"{100 * float(x):.2f} %"


@admin.register(ClickModel)
class ClickModelAdmin(ReadOnlyAdmin):
    """Each click model the strategy fitted: the off-policy gate's figures and whether it went live."""

    list_display = ["version", "status", "created_at", "switched_at", "impressions", "clicks", "candidate_dr",
                    "live_dr", "decision"]  # fmt: skip
    list_filter = ["status"]
    fields = ["version", "status", "created_at", "switched_at", "impressions", "clicks", "decision", "gate", "weights"]
    readonly_fields = fields

    def changelist_view(self, request, extra_context=None):
        """The strategy's last word on the click model above the list (a kept prior has no row of its own)."""
        state = StrategyState.objects.filter(key="default").first()
        if state is not None and state.click_model_note:
            when = f"{state.click_model_at:%Y-%m-%d %H:%M}: " if state.click_model_at else ""
            messages.info(request, f"Last fit {when}{state.click_model_note}")
        elif state is None or state.click_model_at is None:
            messages.info(request, "No click model fitted yet: serving uses the prior (the context-free policy).")
        return super().changelist_view(request, extra_context)

    @admin.display(description="candidate (DR)")
    def candidate_dr(self, obj: ClickModel) -> str:
        return _pct(obj.evaluation.get("candidate", {}).get("dr", {}).get("value"))

    @admin.display(description="live (DR)")
    def live_dr(self, obj: ClickModel) -> str:
        return _pct(obj.evaluation.get("live", {}).get("dr", {}).get("value")) if "candidate" in obj.evaluation else "-"

    @admin.display(description="off-policy gate")
    def gate(self, obj: ClickModel):
        ev = obj.evaluation
        if "candidate" not in ev:
            return "not evaluated"
        rows = [
            (label, name.upper(), _pct(e["value"]), _pct(e["ci_low"]), _pct(e["ci_high"]))
            for label, key in (("candidate", "candidate"), (f"live ({ev.get('live_version', '')})", "live"))
            for name, e in ((n, ev[key][n]) for n in ("dr", "snipw"))
            if isinstance(ev.get(key), dict)
        ]
        return format_html(
            "<p>{} held-out sponsored impressions ({} slates, {} clicks; observed CTR {})</p>"
            "<table><tr><th>policy</th><th>estimator</th><th>CTR</th><th>low</th><th>high</th></tr>{}</table>",
            ev.get("records"), ev.get("slates"), ev.get("clicks"), _pct(ev.get("observed_ctr")),
            format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", rows),
        )  # fmt: skip

    @admin.display(description="weights (posterior mean, sd)")
    def weights(self, obj: ClickModel):
        return format_html(
            "<table><tr><th>feature</th><th>weight</th><th>sd</th></tr>{}</table>",
            format_html_join(
                "", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                ((w["feature"], w["weight"], w["sd"]) for w in obj.evaluation.get("weights", [])),
            ),
        )  # fmt: skip


@admin.register(HourlyStats)
class HourlyStatsAdmin(ReadOnlyAdmin):
    list_display = ["hour", "campaign", "creative", "placement", "impressions", "views", "clicks", "conversions",
                    "spend", "revenue"]  # fmt: skip
    list_filter = ["placement", "campaign"]
    date_hierarchy = "hour"
    list_select_related = ["campaign__advertiser", "creative", "placement"]


@admin.register(DailyStats)
class DailyStatsAdmin(ReadOnlyAdmin):
    list_display = ["day", "campaign", "placement", "impressions", "views", "clicks", "conversions", "spend",
                    "revenue"]  # fmt: skip
    list_filter = ["placement", "campaign"]
    date_hierarchy = "day"
    list_select_related = ["campaign__advertiser", "placement"]


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    list_display = ["name", "placement", "status", "holdout", "results"]
    list_filter = ["status"]
    readonly_fields = ["salt", "created_at", "updated_at", "results_table"]

    @admin.display(description="arms: impressions · clicks · CTR · p vs first")
    def results(self, obj):
        from adengine.selectors.experiments import experiment_report

        parts = []
        for r in experiment_report(obj):
            ctr = f"{r['ctr']:.2%}" if r["ctr"] is not None else "–"
            p = f" p={r['p_value']:.3f}{'*' if r['significant'] else ''}" if r["p_value"] is not None else ""
            parts.append(f"{r['arm']}: {r['impressions']} · {r['clicks']} · {ctr}{p}")
        return " | ".join(parts)

    @admin.display(description="results")
    def results_table(self, obj):
        """Per arm totals, and the daily CTR of each arm as a chart."""
        if not obj.pk:
            return ""
        from django.utils.html import format_html

        from adengine.admin.charts import line_chart
        from adengine.services.simulation import results

        rows = results(obj)
        days = sorted({r.day for r in rows})
        arms = [a["name"] for a in obj.arms] + (["holdout"] if obj.holdout > 0 else [])
        by = {(r.day, r.arm): r for r in rows}
        series = {arm: [by[(d, arm)].ctr if (d, arm) in by else None for d in days] for arm in arms}
        chart = line_chart(days, series, title="CTR by day and arm") if days else ""
        return format_html("<div>{}</div><div>{}</div>", self.results(obj), chart)
