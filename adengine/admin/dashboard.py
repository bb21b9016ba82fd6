"""The campaign dashboard: every campaign with its delivery today and over its run against plan, its results, a
sparkline of its last two weeks and why it is not delivering, with the fix; filtered by advertiser and status."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Case, IntegerField, Value, When
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.formats import date_format
from django.utils.http import urlencode
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

from adengine.models import Advertiser, Campaign
from adengine.routers import for_reports
from adengine.selectors.dashboard import SPARK_DAYS, DashboardRow, dashboard_rows
from adengine.selectors.diagnosis import money

from .charts import sparkline

PAGE_SIZE = 50
STATUS_ORDER = [Campaign.Status.ACTIVE, Campaign.Status.PAUSED, Campaign.Status.DRAFT, Campaign.Status.ENDED]


@dataclass
class Line:
    """A dashboard row as the page shows it."""

    row: DashboardRow
    today_spend: str
    today_plan: str
    total_spend: str
    total_plan: str
    schedule: str
    ctr: str
    roas: str
    spark: SafeString

    @property
    def campaign(self) -> Campaign:
        return self.row.campaign


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x:.2%}"


def _day(value) -> str:
    return date_format(value, "j M Y") if value is not None else ""


def line(row: DashboardRow) -> Line:
    """Money in the shop's currency, CTR to two decimals of a percent, ROAS to two places."""
    c, d = row.campaign, row.diagnosis
    if c.daily_budget is not None:
        today_spend = f"{money(row.spent_today)} of {money(c.daily_budget)}"
        today_plan = f"plan by now {money(d.plan_today)}" if d.plan_today is not None else ""
    else:
        today_spend, today_plan = money(row.spent_today), "no daily budget"
    start, end = c.starts_at, c.ends_at
    schedule = f"{_day(start) or 'open'} – {_day(end) or 'open-ended'}" if start or end else "no schedule"
    counts = ", ".join(str(n) for n in row.impressions_by_day)
    return Line(
        row=row,
        today_spend=today_spend,
        today_plan=today_plan,
        total_spend=f"{money(c.spent)} of {money(c.total_budget)}",
        total_plan=f"plan by now {money(row.plan_total)}" if row.plan_total is not None else "",
        schedule=schedule,
        ctr=_pct(row.total.ctr),
        roas="–" if row.total.roas is None else f"{row.total.roas:.2f}",
        spark=sparkline(
            [float(n) for n in row.impressions_by_day],
            title=f"Impressions a day, last {SPARK_DAYS} days (oldest first): {counts}",
        ),
    )


def _filters(request) -> tuple[dict, dict]:
    """The valid filters from the query string (a bad one is said and ignored) and the lookups they make."""
    chosen, lookups = {}, {}
    advertiser = request.GET.get("advertiser", "")
    if advertiser:
        if advertiser.isdigit() and Advertiser.objects.filter(pk=int(advertiser)).exists():
            chosen["advertiser"], lookups["advertiser_id"] = advertiser, int(advertiser)
        else:
            messages.error(request, _("No advertiser %(id)r; showing every advertiser.") % {"id": advertiser})
    status = request.GET.get("status", "")
    if status:
        if status in Campaign.Status.values:
            chosen["status"], lookups["status"] = status, status
        else:
            messages.error(
                request,
                _("Status must be one of %(values)s; showing every status.")
                % {"values": ", ".join(Campaign.Status.values)},
            )
    return chosen, lookups


@for_reports
def dashboard_view(model_admin, request):
    """GET: a page of campaigns (active first), each with its figures and diagnosis."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    chosen, lookups = _filters(request)
    ordering = Case(*(When(status=s, then=Value(i)) for i, s in enumerate(STATUS_ORDER)), output_field=IntegerField())
    campaigns = (
        Campaign.objects.filter(**lookups)
        .select_related("advertiser")
        .defer("target_vector")  # the diagnosis asks whether there is one; the vectors stay in the database
        .order_by(ordering, "advertiser__name", "name", "pk")
    )
    page = Paginator(campaigns, PAGE_SIZE).get_page(request.GET.get("page"))
    lines = [line(row) for row in dashboard_rows(page.object_list)]
    context = {
        **model_admin.admin_site.each_context(request),
        "lines": lines,
        "page": page,
        "advertisers": Advertiser.objects.order_by("name").values_list("pk", "name"),
        "statuses": Campaign.Status.choices,
        "chosen": chosen,
        "query": urlencode(chosen),
        "blocked": sum(1 for ln in lines if not ln.row.diagnosis.delivering),
        "spark_days": SPARK_DAYS,
        "changelist_url": reverse("admin:adengine_campaign_changelist"),
        "opts": model_admin.model._meta,
        "title": _("Campaign dashboard"),
    }
    return TemplateResponse(request, "adengine/admin/dashboard.html", context)
