"""The campaign report as a marketer reads it: live figures (today's before the roll-up), rates in percent with two
decimals, chart labels inside the chart, a date range, and noisy exports whose rows stay possible."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from adengine import clock
from adengine.admin.charts import line_chart
from adengine.admin.reports import parse_range
from adengine.selectors.reports import ReportRow, with_laplace_noise
from adengine.services.strategy import update_strategy
from tests.conftest import adengine_settings
from tests.factories import CreativeFactory, UserFactory

from .test_update import log_traffic

pytestmark = pytest.mark.django_db


@pytest.fixture
def editor(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def report(client, campaign, **params):
    return client.get(reverse("admin:adengine_campaign_report", args=[campaign.pk]), params)


def table_rows(page: str) -> dict[str, list[str]]:
    """The report table's rows by their first cell."""
    body = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    rows = {}
    for tr in re.findall(r"<tr>(.*?)</tr>", body, re.S):
        cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S)]
        rows[cells[0]] = cells[1:]
    return rows


def test_today_shows_before_the_roll_up_runs(editor, placement, make_campaign):
    # given yesterday's traffic rolled up, and today's logged since
    campaign = make_campaign(headlines=0)
    headline = CreativeFactory(campaign=campaign)
    now = timezone.now()
    log_traffic(headline, placement, served=30, clicks=3, when=now - dt.timedelta(days=1))
    update_strategy(lag_seconds=0)
    log_traffic(headline, placement, served=40, clicks=2, when=now)
    # when the report is opened before the next roll-up
    rows = table_rows(report(editor, campaign).content.decode())
    # then today's impressions and clicks are there, and yesterday's
    today, yesterday = clock.today(now), clock.today(now - dt.timedelta(days=1))
    assert rows[today.isoformat()][0] == "40" and rows[today.isoformat()][3] == "2"
    assert rows[yesterday.isoformat()][0] == "30" and rows[yesterday.isoformat()][3] == "3"


def test_ctr_and_rates_have_two_decimals(editor, placement, make_campaign):
    # given 3 clicks of 127 impressions (2.362 %)
    campaign = make_campaign(headlines=0)
    log_traffic(CreativeFactory(campaign=campaign), placement, served=127, clicks=3, when=timezone.now())
    page = report(editor, campaign, by="placement").content.decode()
    (cells,) = table_rows(page).values()
    # then the CTR reads 2.36 %, not 2 %
    assert cells[4] == "2.36 %"
    assert cells[6] == "0.00 %"  # conversion rate: none of the 3 clicks converted


def test_the_percent_filter():
    from adengine.templatetags.adengine_format import percent

    assert percent(0.023622) == "2.36 %" and percent(0.0004) == "0.04 %" and percent(1) == "100.00 %"
    assert percent(None) == "–" and percent("x") == "–" and percent(0.5, 1) == "50.0 %"


def label_extents(svg: str, *, y: float) -> list[tuple[float, float, str]]:
    """(left, right, text) of each text at height ``y``, measured generously (0.6 em a Latin character, 1 em a
    CJK one) for text-anchor start, middle or end."""
    found = []
    for attrs, text in re.findall(r"<text ([^>]*)>([^<]*)</text>", svg):
        a = dict(re.findall(r'([\w-]+)="([^"]*)"', attrs))
        if float(a["y"]) != y:
            continue
        size = float(a["font-size"])
        w = sum(size * (1.0 if ord(ch) > 0x2E80 else 0.6) for ch in text)
        x = float(a["x"])
        anchor = a.get("text-anchor", "start")
        left = {"start": x, "middle": x - w / 2, "end": x - w}[anchor]
        found.append((left, left + w, text))
    return found


@pytest.mark.parametrize(
    "labels",
    [
        [(dt.date(2025, 1, 1) + dt.timedelta(days=i)).isoformat() for i in range(30)],
        [(dt.date(2025, 1, 1) + dt.timedelta(days=i)).isoformat() for i in range(2)],
        ["2025-03-01"],
        [f"首页横幅广告位 {i}" for i in range(5)],
    ],
)
def test_every_chart_label_is_inside_the_chart(labels):
    width, height = 640, 220
    svg = str(line_chart(labels, {"CTR %": [1.0] * len(labels), "spend": [2.0] * len(labels)}, title="t"))
    assert f'width="{width}"' in svg
    axis = label_extents(svg, y=height - 12)
    # the last label is drawn, and no label leaves the chart
    assert axis[-1][2] == labels[-1] and axis[0][2] == labels[0]
    assert all(0 <= left and right <= width for left, right, _ in axis), axis
    # and none overlaps its neighbour
    assert all(a[1] <= b[0] for a, b in zip(axis, axis[1:], strict=False)), axis
    legend = label_extents(svg, y=18)
    assert all(0 <= left and right <= width for left, right, _ in legend), legend


def test_parse_range_presets_dates_and_bad_input():
    today = dt.date(2025, 3, 31)
    assert parse_range({}, today=today).first is None
    week = parse_range({"days": "7"}, today=today)
    assert (week.first, week.last, week.until) == (dt.date(2025, 3, 25), today, dt.date(2025, 4, 1))
    assert parse_range({"days": "30"}, today=today).first == dt.date(2025, 3, 2)
    span = parse_range({"from": "2025-03-01", "to": "2025-03-10"}, today=today)
    assert span.describe() == "2025-03-01 to 2025-03-10 (10 days)" and not span.error
    assert "days must be one of 7, 14, 30, not “9”" in parse_range({"days": "9"}, today=today).error
    assert "“from” must be a date (YYYY-MM-DD), not “March”" in parse_range({"from": "March"}, today=today).error
    backwards = parse_range({"from": "2025-03-10", "to": "2025-03-01"}, today=today)
    assert "starts (2025-03-10) after it ends (2025-03-01)" in backwards.error and backwards.first is None
    edged = parse_range({"to": "9999-12-31"}, today=today)  # no day after it: was a 500 (OverflowError)
    assert "“to” is out of range" in edged.error and edged.until is None


def test_the_date_range_picker_filters_and_rejects_a_bad_range(editor, placement, make_campaign):
    # given traffic today and 10 days ago
    campaign = make_campaign(headlines=0)
    headline = CreativeFactory(campaign=campaign)
    now = timezone.now()
    log_traffic(headline, placement, served=5, clicks=1, when=now)
    log_traffic(headline, placement, served=9, clicks=0, when=now - dt.timedelta(days=10))
    today, earlier = clock.today(now), clock.today(now - dt.timedelta(days=10))
    # when the last 7 days are picked, only today shows
    page = report(editor, campaign, days="7").content.decode()
    assert list(table_rows(page)) == [today.isoformat()]
    assert 'aria-current="true"' in page and "(7 days)" in page
    # when dates around the earlier day are picked, only it shows
    page = report(editor, campaign, **{"from": earlier.isoformat(), "to": earlier.isoformat()}).content.decode()
    assert list(table_rows(page)) == [earlier.isoformat()]
    # when the range ends before it starts, a message says so and every day shows
    bad = report(editor, campaign, **{"from": today.isoformat(), "to": earlier.isoformat()})
    assert bad.status_code == 200
    page = bad.content.decode()
    assert "errornote" in page and f"The range starts ({today.isoformat()}) after it ends" in page
    assert list(table_rows(page)) == sorted([earlier.isoformat(), today.isoformat()])
    # and a date that is no date is a message too, not a 500
    page = report(editor, campaign, to="yesterday").content.decode()
    assert "“to” must be a date (YYYY-MM-DD), not “yesterday”" in page
    # and the CSV export follows the range
    body = report(editor, campaign, days="7", format="csv").content.decode()
    assert [r["day"] for r in csv.DictReader(io.StringIO(body))] == [today.isoformat()]


def test_noise_never_makes_an_impossible_row():
    # given many rows of small counts, where noise would often push clicks above impressions or below zero
    rows = [
        ReportRow(key=str(i), impressions=i % 4, views=i % 3, clicks=min(i % 3, i % 4), conversions=i % 2 * (i % 3 > 0),
                  spend=Decimal("1.00") * (i % 3), revenue=Decimal("20") * (i % 2), reach=i % 4)
        for i in range(2000)
    ]  # fmt: skip
    for epsilon in (0.1, 1.0):
        noisy = with_laplace_noise(rows, epsilon=epsilon, seed=7)
        # then every noisy row is possible
        for r in noisy:
            counts = (r.impressions, r.views, r.clicks, r.conversions, r.reach)
            assert all(isinstance(c, int) and c >= 0 for c in counts), r
            assert r.clicks <= r.impressions and r.views <= r.impressions and r.reach <= r.impressions, r
            assert r.conversions <= r.clicks and r.spend >= 0 and r.revenue >= 0, r
            assert r.ctr is None or 0 <= r.ctr <= 1
        # and the noise is there (the rows are not the exact ones)
        assert sum(a.impressions != b.impressions for a, b in zip(rows, noisy, strict=True)) > 500


def test_the_noisy_export_states_its_epsilon_and_keeps_every_row_possible(editor, placement, make_campaign):
    # given 40 days of thin traffic, a click on most days
    campaign = make_campaign(headlines=0)
    headline = CreativeFactory(campaign=campaign)
    now = timezone.now()
    for day in range(40):
        log_traffic(
            headline, placement, served=1 + day % 2, clicks=1 if day % 3 else 0, when=now - dt.timedelta(days=day)
        )
    update_strategy(lag_seconds=0)
    with adengine_settings(REPORT_NOISE_EPSILON=0.5):
        for _ in range(5):
            # when the noisy export is downloaded
            response = report(editor, campaign, format="csv", noise="1")
            lines = response.content.decode().splitlines()
            # then its first line states epsilon and the post-processing
            assert lines[0].startswith("# Differentially private export") and "epsilon = 0.5 " in lines[0]
            assert "clicks and reach never above impressions" in lines[0]
            assert "eps0.5" in response["Content-Disposition"]
            # and no row has more clicks than impressions, or a negative count
            table = list(csv.DictReader(io.StringIO("\n".join(lines[1:]))))
            assert len(table) == 40
            for row in table:
                counts = {m: int(row[m]) for m in ("impressions", "views", "clicks", "conversions", "reach")}
                assert min(counts.values()) >= 0, row
                assert counts["clicks"] <= counts["impressions"] and counts["conversions"] <= counts["clicks"], row
                assert row["ctr"] == "" or 0 <= float(row["ctr"]) <= 1
    # and the exact export states nothing of the kind
    exact = report(editor, campaign, format="csv").content.decode()
    assert exact.startswith("day,impressions")
