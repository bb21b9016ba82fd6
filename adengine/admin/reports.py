"""The campaign report page: live figures (the hourly roll-up plus the log since it) by day, placement or headline,
over a date range picked by dates or a preset, with charts and CSV exports (exact, or with Laplace noise)."""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.utils.http import urlencode
from django.utils.translation import gettext as _

from adengine import clock
from adengine.conf import settings as ad_settings
from adengine.models import Campaign
from adengine.routers import for_reports
from adengine.selectors.reports import BREAKDOWNS, METRICS, campaign_report, noise_note, with_laplace_noise
from adengine.text import spreadsheet_safe

from .charts import line_chart

PRESETS = (7, 14, 30)
RATES = {"ctr", "conversion_rate", "roas"}


@dataclass(frozen=True)
class DateRange:
    """The shop's days a report covers, first and last included (None: open), or why the asked range was not."""

    first: dt.date | None = None
    last: dt.date | None = None
    preset: int | None = None
    error: str = ""

    @property
    def until(self) -> dt.date | None:
        """The day after the last (the selectors' bound is exclusive)."""
        return self.last + dt.timedelta(days=1) if self.last else None

    def describe(self) -> str:
        if self.first and self.last:
            days = (self.last - self.first).days + 1
            return f"{self.first.isoformat()} to {self.last.isoformat()} ({days} day{'s' if days != 1 else ''})"
        if self.first:
            return f"from {self.first.isoformat()} on"
        if self.last:
            return f"up to {self.last.isoformat()}"
        return "every day"


def parse_range(params, *, today: dt.date) -> DateRange:
    """The range of ``?days=7|14|30`` (the last n days, today included) or ``?from=YYYY-MM-DD&to=YYYY-MM-DD``
    (either may be empty); a bad value or a range that ends before it starts is rejected with a message, and
    the report covers every day instead."""
    days = (params.get("days") or "").strip()
    if days:
        if days not in {str(p) for p in PRESETS}:
            choices = ", ".join(map(str, PRESETS))
            return DateRange(error=f"days must be one of {choices}, not “{days}”; showing every day.")
        n = int(days)
        return DateRange(first=today - dt.timedelta(days=n - 1), last=today, preset=n)
    found: dict[str, dt.date | None] = {}
    for name in ("from", "to"):
        value = (params.get(name) or "").strip()
        try:
            found[name] = day = dt.date.fromisoformat(value) if value else None
            if day is not None:  # its bounds as times must exist too (9999-12-31 has no day after it)
                clock.day_start(day), clock.day_start(day + dt.timedelta(days=1))
        except ValueError:
            return DateRange(error=f"“{name}” must be a date (YYYY-MM-DD), not “{value}”; showing every day.")
        except OverflowError:
            return DateRange(error=f"“{name}” is out of range (“{value}”); showing every day.")
    first, last = found["from"], found["to"]
    if first and last and first > last:
        return DateRange(
            error=f"The range starts ({first.isoformat()}) after it ends ({last.isoformat()}); pick a start on or "
            "before the end. Showing every day."
        )
    return DateRange(first=first, last=last)


def export_csv(campaign: Campaign, rows, *, by: str, epsilon: float | None) -> HttpResponse:
    """The report as CSV; with ``epsilon``, noisy counts and a first row that states the noise and its
    post-processing."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    suffix = f"-noise-eps{epsilon:g}" if epsilon is not None else ""
    response["Content-Disposition"] = f'attachment; filename="campaign-{campaign.pk}-by-{by}{suffix}.csv"'
    if epsilon is not None:  # a comment line, as read_csv(comment="#") and most tools skip it
        response.write(f"# {noise_note(epsilon)}\r\n")
    writer = csv.writer(response)
    writer.writerow([by, *METRICS])
    for r in rows:
        d = r.as_dict()
        cells = [round(d[m], 6) if m in RATES and d[m] is not None else d[m] for m in METRICS]
        writer.writerow([spreadsheet_safe(d["key"]), *("" if c is None else c for c in cells)])
    return response


@for_reports
def report_view(model_admin, request, pk: int):
    """Impressions, reach, clicks, CTR, conversions, spend, revenue, ROAS and eCPM by day, placement or headline,
    live (today's figures before the roll-up has run), with charts; CSV export, optionally with Laplace noise."""
    campaign = get_object_or_404(Campaign.objects.select_related("advertiser"), pk=pk)
    by = request.GET.get("by", "day")
    errors = []
    if by not in BREAKDOWNS:
        errors.append(f"by must be one of {', '.join(BREAKDOWNS)}; showing by day.")
        by = "day"
    today = clock.today()
    span = parse_range(request.GET, today=today)
    if span.error:
        errors.append(span.error)
    rows = campaign_report(campaign, by=by, since=span.first, until=span.until)
    epsilon = float(ad_settings.REPORT_NOISE_EPSILON)
    if request.GET.get("format") == "csv":
        noisy = request.GET.get("noise") == "1"
        if noisy:
            return export_csv(campaign, with_laplace_noise(rows, epsilon=epsilon), by=by, epsilon=epsilon)
        return export_csv(campaign, rows, by=by, epsilon=None)
    kept = {k: v for k, v in request.GET.items() if k in ("by", "from", "to", "days") and not span.error}
    labels = [r.key for r in rows]
    context = {
        **model_admin.admin_site.each_context(request),
        "campaign": campaign,
        "rows": rows,
        "by": by,
        "breakdowns": list(BREAKDOWNS),
        "span": span,
        "from": request.GET.get("from", "") if not span.preset else span.first.isoformat(),
        "to": request.GET.get("to", "") if not span.preset else span.last.isoformat(),
        "presets": [(n, urlencode({"by": by, "days": n})) for n in PRESETS],
        "query": urlencode(kept | {"by": by}),
        "epsilon": epsilon,
        "errors": errors,
        "today": today.isoformat(),
        "ctr_chart": line_chart(
            labels,
            {"CTR %": [None if r.ctr is None else 100 * r.ctr for r in rows]},
            title=_("Click-through rate by day (%)"),
        ),
        "money_chart": line_chart(
            labels,
            {"spend": [float(r.spend) for r in rows], "revenue": [float(r.revenue) for r in rows]},
            title=_("Spend and revenue by day"),
        ),
        "opts": model_admin.model._meta,
        "title": _("Report: “%(campaign)s” (%(advertiser)s)")
        % {"campaign": campaign.name, "advertiser": campaign.advertiser.name},
    }
    return TemplateResponse(request, "adengine/admin/campaign_report.html", context)
