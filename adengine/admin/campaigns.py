"""Admin for advertisers and campaigns (audience preview, copy generation, delivery and results)."""

from __future__ import annotations

import logging

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _

from adengine.models import (
    Advertiser,
    Campaign,
)

from . import dashboard, pickers, previews, reports, review
from .forms import CampaignForm

log = logging.getLogger(__name__)


@admin.register(Advertiser)
class AdvertiserAdmin(admin.ModelAdmin):
    list_display = ["name", "created_at"]
    search_fields = ["name"]
    filter_horizontal = ["managers"]


class CampaignChangeList(ChangeList):
    """The campaign list with every row's figures read in one query for the page."""

    def get_results(self, request):
        from adengine.selectors.performance import totals

        super().get_results(request)
        found = totals([c.pk for c in self.result_list])
        for campaign in self.result_list:
            campaign.figures = found[campaign.pk]


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ["name", "advertiser", "status", "tier", "pricing", "bid", "budget", "results", "report_link",
                    "audience_link", "assets"]  # fmt: skip
    list_filter = ["status", "tier", "objective", "pricing", "advertiser"]
    search_fields = ["name", "description"]
    form = CampaignForm
    autocomplete_fields = ["advertiser"]
    filter_horizontal = ["placements"]
    readonly_fields = ["spent", "created_at", "updated_at"]
    actions = ["generate_copy", "activate", "pause"]
    change_form_template = "adengine/admin/campaign_change_form.html"
    change_list_template = "adengine/admin/campaign_change_list.html"
    fieldsets = [
        (None, {"fields": ["advertiser", "name", "status", "tier"]}),
        ("Targeting", {"fields": ["description", "keywords", "categories", "promoted_products",
                                  "audience_min_similarity", "placements", "languages", "brand_voice"]}),
        ("Delivery", {"fields": ["objective", "pricing", "bid", "total_budget", "daily_budget", "spent", "starts_at",
                                 "ends_at", "frequency_cap", "landing_url"]}),
        ("Record", {"fields": ["created_at", "updated_at"]}),
    ]  # fmt: skip

    @admin.display(description="spent / budget")
    def budget(self, obj):
        return f"{obj.spent:.2f} / {obj.total_budget:.2f}"

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "promoted_products":  # picked by name, with images (adengine.admin.pickers)
            return pickers.product_field(db_field, self.admin_site, **kwargs)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def get_changelist(self, request, **kwargs):
        return CampaignChangeList

    @admin.display(description="impressions · clicks · CTR · conv. · ROAS")
    def results(self, obj):
        f = getattr(obj, "figures", None)
        if f is None:  # outside the change list
            from adengine.selectors.performance import totals

            f = totals([obj.pk])[obj.pk]
        ctr = f"{f.ctr:.2%}" if f.ctr is not None else "–"
        roas = f"{f.roas:.2f}" if f.roas is not None else "–"
        return f"{f.impressions} · {f.clicks} · {ctr} · {f.conversions} · {roas}"

    @admin.action(description="Activate")
    def activate(self, request, queryset):
        from adengine.selectors.diagnosis import diagnose
        from adengine.services.campaigns import set_status

        set_status(campaigns=queryset, status=Campaign.Status.ACTIVE)
        campaigns = list(queryset.defer("target_vector"))
        found = diagnose(campaigns)  # one diagnosis of them all (a fixed number of queries)
        for campaign in campaigns:
            self._warn_if_stuck(request, campaign, found[campaign.pk])

    @admin.action(description="Pause")
    def pause(self, request, queryset):
        from adengine.services.campaigns import set_status

        set_status(campaigns=queryset, status=Campaign.Status.PAUSED)

    @admin.display(description="assets")
    def assets(self, obj):
        url = reverse("admin:adengine_creative_changelist") + f"?campaign__id__exact={obj.pk}"
        return format_html('<a href="{}">assets</a>', url)

    @admin.action(description="Generate copy (8 variants per campaign language, in the worker)")
    def generate_copy(self, request, queryset):
        from adengine.services.creatives import CreativeRequestError, GenerationNotQueued, request_copy

        made = 0
        wanted = [(campaign, language) for campaign in queryset for language in campaign.languages or ["en"]]
        for campaign, language in wanted:
            try:
                request_copy(campaign=campaign, language=language, n=8, user=request.user)
                made += 1
            except CreativeRequestError as exc:
                self.message_user(request, f"{campaign}: {exc}", messages.ERROR)
            except GenerationNotQueued as exc:  # the broker is down: the others would fail the same way
                self.message_user(
                    request,
                    f"Copy generation is unavailable right now, try again later: {exc} The request for {campaign} "
                    f"({language}) is marked failed with this reason; no other request was made.",
                    messages.ERROR,
                )
                break
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
            path("dashboard/", self.admin_site.admin_view(self.dashboard_view), name="adengine_dashboard"),
            path(
                "<int:pk>/audience/", self.admin_site.admin_view(self.audience_view), name="adengine_campaign_audience"
            ),
            path("<int:pk>/report/", self.admin_site.admin_view(self.report_view), name="adengine_campaign_report"),
            path("<int:pk>/review/", self.admin_site.admin_view(self.review_view), name="adengine_campaign_review"),
            path(
                "products/search/",
                self.admin_site.admin_view(self.product_search_view),
                name="adengine_product_autocomplete",
            ),
            *super().get_urls(),
        ]

    def dashboard_view(self, request):
        """Every campaign's delivery against plan, results and delivery diagnosis, filtered by advertiser and status."""
        return dashboard.dashboard_view(self, request)

    def save_related(self, request, form, formsets, change):
        """After the campaign and its placements and products are saved: warn when it is active but cannot deliver
        (the save stands)."""
        super().save_related(request, form, formsets, change)
        self._warn_if_stuck(request, form.instance)

    def _warn_if_stuck(self, request, campaign: Campaign, diagnosis=None) -> None:
        """A warning naming what stops an active campaign from delivering, each with its fix (none: silence)."""
        if campaign.status != Campaign.Status.ACTIVE:
            return
        from adengine.selectors.diagnosis import diagnose_one

        reasons = (diagnosis or diagnose_one(campaign)).cannot_deliver
        if reasons:
            said = format_html_join(
                "; ",
                "{}: {}",
                ((r.message, format_html('<a href="{}">{}</a>', r.url, r.fix) if r.url else r.fix) for r in reasons),
            )
            self.message_user(
                request, format_html("“{}” is active but cannot deliver: {}.", campaign.name, said), messages.WARNING
            )

    def product_search_view(self, request):
        """The product picker's search: products by title, SKU or brand, with their images (select2's JSON)."""
        return pickers.product_autocomplete(request, model_admin=self)

    def review_view(self, request, pk: int):
        """The campaign's copy side by side by language, with rules, scores, evidence and Approve / Reject."""
        return review.review_view(self, request, pk)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """The change page links to the copy review, with how many variants wait for it, and previews the campaign's
        best ad in each placement."""
        campaign = self.get_object(request, object_id)
        if campaign is not None and request.user.has_perm(review.PERMISSION):
            extra_context = {
                **(extra_context or {}),
                "review_url": review.review_url(campaign.pk),
                "review_waiting": review.waiting(campaign),
            }
        if campaign is not None:
            preview = previews.campaign_preview(campaign, request=request)
            extra_context = {**(extra_context or {}), "ad_preview": preview}
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="report")
    def report_link(self, obj):
        return format_html('<a href="{}">report</a>', reverse("admin:adengine_campaign_report", args=[obj.pk]))

    def report_view(self, request, pk: int):
        """The campaign's live report by day, placement or headline over a date range, with charts and CSV."""
        return reports.report_view(self, request, pk)

    @admin.display(description="audience")
    def audience_link(self, obj):
        return format_html('<a href="{}">preview</a>', reverse("admin:adengine_campaign_audience", args=[obj.pk]))

    def audience_view(self, request, pk: int):
        """The campaign's nearest shoppers and the behaviour that put each one there."""
        from adengine.selectors.audience import campaign_audience, why_in_audience
        from adengine.services.campaigns import campaign_target

        campaign = get_object_or_404(Campaign, pk=pk)
        days = request.GET.get("active_days")
        try:
            active_days = float(days) if days else None
            k = min(max(int(request.GET.get("k", 50)), 1), 500)
        except ValueError:
            active_days, k = None, 50
            messages.error(request, _("k and active_days must be numbers; showing the defaults."))
        rows, error = [], ""
        try:
            vector = campaign_target(campaign)  # computed once (and stored) when its inputs changed
            members = campaign_audience(campaign, vector, k=k, active_within_days=active_days)
            rows = [(m, why_in_audience(m.shopper, vector)) for m in members]
            if vector is None:
                error = _("Give the campaign a description, keywords or promoted products to find its audience.")
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
            "title": _("Audience of %(campaign)s") % {"campaign": campaign},
        }
        return TemplateResponse(request, "adengine/admin/campaign_audience.html", context)
