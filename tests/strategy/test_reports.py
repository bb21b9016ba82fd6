"""Admin reports from the hourly roll-up: tables, SVG charts, CSV export, Laplace noise."""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.urls import reverse

from adengine.selectors.reports import campaign_report, with_laplace_noise
from adengine.services.strategy import update_strategy
from tests.factories import CreativeFactory, UserFactory

from .test_update import log_traffic

pytestmark = pytest.mark.django_db


@pytest.fixture
def reported(placement, make_campaign):
    campaign = make_campaign(headlines=0, name="Trail <b>season</b>")
    a, b = CreativeFactory(campaign=campaign), CreativeFactory(campaign=campaign)
    log_traffic(a, placement, served=120, clicks=6)
    log_traffic(b, placement, served=80, clicks=2)
    update_strategy(lag_seconds=0)
    return campaign


def test_report_rows_add_up_by_each_breakdown(reported):
    for by in ("day", "placement", "creative"):
        rows = campaign_report(reported, by=by)
        assert sum(r.impressions for r in rows) == 200 and sum(r.clicks for r in rows) == 8
        assert sum(r.spend for r in rows) == pytest.approx(8.0)
    (day,) = campaign_report(reported, by="day")
    assert day.ctr == pytest.approx(0.04) and day.ecpm == pytest.approx(40.0)
    with pytest.raises(ValueError):
        campaign_report(reported, by="weather")


def test_laplace_noise_is_calibrated_and_keeps_figures_plausible(reported):
    rows = campaign_report(reported, by="creative")
    noisy = [with_laplace_noise(rows, epsilon=1.0, seed=s) for s in range(200)]
    diffs = [n[0].impressions - rows[0].impressions for n in noisy]
    # Laplace(0, 1/epsilon): mean absolute deviation 1/epsilon
    assert sum(abs(d) for d in diffs) / len(diffs) == pytest.approx(1.0, abs=0.25)
    assert all(r.impressions >= 0 and r.clicks >= 0 for n in noisy for r in n)
    wide = [with_laplace_noise(rows, epsilon=0.1, seed=s)[0].impressions - rows[0].impressions for s in range(200)]
    assert sum(abs(d) for d in wide) / len(wide) > 5  # a smaller budget means more noise
    with pytest.raises(ValueError):
        with_laplace_noise(rows, epsilon=0)


def test_admin_report_page_chart_and_csv(client, reported):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    url = reverse("admin:adengine_campaign_report", args=[reported.pk])
    page = client.get(url).content.decode()
    assert "<svg" in page and "<polyline" in page or "<circle" in page
    assert "Trail &lt;b&gt;season&lt;/b&gt;" in page and "<b>season</b>" not in page
    exact = client.get(url, {"by": "creative", "format": "csv"})
    assert exact["Content-Type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(exact.content.decode())))
    assert sorted(int(r["impressions"]) for r in table) == [80, 120]
    noisy = client.get(url, {"by": "creative", "format": "csv", "noise": "1"})
    assert "noise" in noisy["Content-Disposition"]
    assert client.get(url, {"by": "weather"}).status_code == 200  # a clear message, not a 500


def test_csv_exports_never_hand_a_spreadsheet_a_formula(client, placement, make_campaign):
    # given a headline written as a spreadsheet formula
    campaign = make_campaign(headlines=0)
    evil = CreativeFactory(campaign=campaign, text='=HYPERLINK("http://evil.example","x")')
    log_traffic(evil, placement, served=10, clicks=1)
    update_strategy(lag_seconds=0)
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    url = reverse("admin:adengine_campaign_report", args=[campaign.pk])
    for extra in ({}, {"noise": "1"}):
        # when the report is exported, exact or with noise
        body = client.get(url, {"by": "creative", "format": "csv", **extra}).content.decode()
        cells = [row[0] for row in csv.reader(io.StringIO(body))][1:]
        # then the cell is text, not a formula
        assert cells and all(not c.startswith(("=", "+", "-", "@")) for c in cells), cells
        assert any("HYPERLINK" in c for c in cells)


def test_spreadsheet_safe_cells():
    from adengine.text import spreadsheet_safe

    assert spreadsheet_safe("=1+1") == "'=1+1"
    assert spreadsheet_safe("@SUM(A1)") == "'@SUM(A1)"
    assert spreadsheet_safe("\tx") == "'\tx"
    assert spreadsheet_safe("Trail season") == "Trail season"
    assert spreadsheet_safe(12) == 12


def test_every_view_of_performance_agrees_on_rolled_up_and_live_rows(admin_client, placement, make_campaign):
    """The admin list said 293 impressions where the report said 241: they read different sources. Now the API,
    the list, the report and the CSV read one, the roll-up plus the log after its watermark."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from adengine.selectors.performance import totals

    campaign = make_campaign(headlines=0, name="Agreeing")
    headline = CreativeFactory(campaign=campaign)
    log_traffic(headline, placement, served=50, clicks=5)
    update_strategy(lag_seconds=0)  # rolled up
    log_traffic(headline, placement, served=30, clicks=1)  # not yet
    others = [make_campaign() for _ in range(3)]
    for other in others:
        log_traffic(other.creatives.first(), placement, served=7, clicks=0)
    # then every view says 80 impressions and 6 clicks
    assert totals([campaign.pk])[campaign.pk].impressions == 80
    assert sum(r.impressions for r in campaign_report(campaign, by="day")) == 80
    api_user = UserFactory(is_staff=True, is_superuser=True)
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(api_user)
    stats = api.get(f"/api/adengine/v1/campaigns/{campaign.pk}/stats/").json()
    assert stats["totals"]["impressions"] == 80 and stats["totals"]["clicks"] == 6
    assert sum(d["impressions"] for d in stats["by_day"]) == 80
    csv_text = admin_client.get(reverse("admin:adengine_campaign_report", args=[campaign.pk]) + "?format=csv")
    rows = list(csv.DictReader(io.StringIO(csv_text.content.decode())))
    assert sum(int(r["impressions"]) for r in rows) == 80
    # and the admin list shows it, reading the figures of all its rows in one query
    with CaptureQueriesContext(connection) as few:
        page = admin_client.get(reverse("admin:adengine_campaign_changelist")).content.decode()
    assert "80 · 6 · 7.50% · 0 · 0.00" in page and "7 · 0 · 0.00% · 0 · –" in page
    figure_queries = [q for q in few.captured_queries if re.search("adengine_(hourly|daily)stats", q["sql"])]
    assert len(figure_queries) == 1
