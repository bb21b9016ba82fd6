"""The daily roll-up: the hourly one summed by campaign, shop day and placement, written by the same job in the same
transaction, read by the dashboard's whole-run totals and its last days (and any figures of whole days by campaign,
day or placement) -- with the same figures as the hourly one, through a second run, corrections, retention, erasure
and a deleted placement."""

from __future__ import annotations

import datetime as dt
import functools
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from adengine import clock
from adengine.models import Conversion, DailyStats, Impression, Placement
from adengine.selectors import dashboard
from adengine.selectors.dashboard import dashboard_rows
from adengine.selectors.performance import figures, totals
from adengine.services import log_partitions
from adengine.services.shoppers import erase_shopper
from adengine.services.strategy import rebuild_daily_rollup, update_strategy
from tests.conftest import adengine_settings
from tests.factories import CreativeFactory, PlacementFactory, ShopperFactory
from tests.strategy.test_update import log_traffic

pytestmark = pytest.mark.django_db
COUNTERS = "sum(impressions), sum(views), sum(clicks), sum(conversions), sum(spend), sum(revenue)"


def hourly_by_day() -> dict[tuple, tuple]:
    """The hourly roll-up summed by (campaign, shop day, placement)."""
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT campaign_id, (hour AT TIME ZONE %s)::date, placement_id, {COUNTERS} FROM adengine_hourlystats "
            "GROUP BY 1, 2, 3",
            [timezone.get_default_timezone_name()],
        )
        return {tuple(r[:3]): tuple(r[3:]) for r in cur.fetchall()}


def daily() -> dict[tuple, tuple]:
    with connection.cursor() as cur:
        cur.execute(f"SELECT campaign_id, day, placement_id, {COUNTERS} FROM adengine_dailystats GROUP BY 1, 2, 3")
        return {tuple(r[:3]): tuple(r[3:]) for r in cur.fetchall()}


def assert_daily_is_hourly_by_day() -> None:
    """The daily roll-up holds exactly the hourly one's sums by day (and something: a test of nothing proves none)."""
    expected = hourly_by_day()
    assert expected, "no roll-up rows at all"
    assert daily() == expected


def both_ways(campaign_ids, **kwargs) -> tuple[dict, dict]:
    """``figures`` read from the daily roll-up (checked to be) and from the hourly one."""
    with CaptureQueriesContext(connection) as read:
        fast = figures(campaign_ids, **kwargs)
    assert any("adengine_dailystats" in q["sql"] for q in read.captured_queries), "the daily roll-up was not read"
    return fast, figures(campaign_ids, **kwargs, daily=False)


def conversion(imp: Impression, key: str, revenue: str, when: dt.datetime) -> Conversion:
    return Conversion.objects.create(order_key=key, campaign=imp.campaign, impression=imp, click=imp.events.get(),
                                     revenue=Decimal(revenue), ordered_at=when)  # fmt: skip


@pytest.fixture
def shop_zone(request, settings) -> str:
    """The shop's time zone (TIME_ZONE): UTC unless a test is parametrized with others."""
    settings.TIME_ZONE = getattr(request, "param", "UTC")
    return settings.TIME_ZONE


@pytest.fixture
def traffic(shop_zone, make_campaign):
    """Three campaigns on two placements over three weeks, hours either side of the shop's midnights, clicks and
    conversions; returns the campaigns and a function that adds a day of traffic at a time."""
    hero, side = PlacementFactory(key="hero"), PlacementFactory(key="side")
    campaigns = [make_campaign(headlines=0, name=f"C{n}") for n in range(3)]
    heads = [[CreativeFactory(campaign=c), CreativeFactory(campaign=c)] for c in campaigns]
    midnight = clock.midnight(timezone.now())
    orders = iter(range(10_000))

    def serve(days_ago: int, minutes: int, n: int, clicks: int, *, who: int, where=hero, head: int = 0, paid=None):
        when = midnight - dt.timedelta(days=days_ago) + dt.timedelta(minutes=minutes)
        imps = log_traffic(heads[who][head], where, served=n, clicks=clicks, when=when)
        for imp in imps[: len(paid or [])]:
            conversion(imp, f"O{next(orders)}", paid[imps.index(imp)], when + dt.timedelta(minutes=20))
        return imps

    serve(20, 30, 4, 1, who=0)  # beyond the dashboard's 14 days
    serve(13, -10, 3, 1, who=0, where=side)  # ten minutes before a midnight: the day before
    serve(13, 10, 5, 2, who=0, head=1, paid=["120.50"])  # ten minutes after it
    serve(5, 600, 7, 3, who=1, paid=["10.00", "0.99"])
    serve(5, 610, 2, 0, who=1, where=side, head=1)
    serve(1, 1430, 6, 2, who=2)
    serve(1, 5, 1, 1, who=2, where=side)
    return campaigns, serve


@pytest.mark.parametrize("shop_zone", ["UTC", "Asia/Shanghai", "America/New_York"], indirect=True)
def test_the_daily_roll_up_is_the_hourly_one_by_day_through_the_tail_and_a_second_run(traffic, shop_zone):
    campaigns, serve = traffic
    ids = [c.pk for c in campaigns]
    # given traffic rolled up by the strategy update
    update_strategy(lag_seconds=0)
    assert_daily_is_hourly_by_day()
    assert DailyStats.objects.count() < 20  # a row per campaign, day and placement, not per hour and headline
    # and a live tail past its watermark: today's traffic and a late click on an old day
    serve(0, 1, 3, 1, who=0, where=Placement.objects.get(key="side"))
    serve(0, 2, 2, 2, who=1, paid=["5.00"])
    # then figures read from the daily roll-up are those read from the hourly one, tail included
    since = clock.day_start(clock.today() - dt.timedelta(days=13))
    for kwargs in (
        {"by": ("campaign",)},
        {"by": ("campaign", "day"), "since": since},
        {"by": ("campaign",), "since": clock.midnight()},
        {"by": ("placement",)},
        {"by": ()},
        {"by": ("day",), "since": since, "until": clock.day_start(clock.today())},
    ):
        fast, slow = both_ways(ids, **kwargs)
        assert fast == slow and fast, kwargs
    before = figures(ids, by=("campaign", "day"), daily=False)
    assert sum(f.impressions for f in before.values()) == 33 and sum(f.conversions for f in before.values()) == 4
    assert sum(f.revenue for f in before.values()) == Decimal("136.49")
    # when the update runs again (the tail rolled up), the daily roll-up follows, and no figure moves
    update_strategy(lag_seconds=0)
    assert_daily_is_hourly_by_day()
    fast, slow = both_ways(ids, by=("campaign", "day"))
    assert fast == slow == before
    # and a third run with nothing new changes nothing
    update_strategy(lag_seconds=0)
    assert_daily_is_hourly_by_day()


def test_figures_of_part_of_a_day_or_by_headline_read_the_hourly_roll_up(traffic):
    campaigns, _ = traffic
    update_strategy(lag_seconds=0)
    for kwargs in (
        {"by": ("creative",)},
        {"by": ("arm",)},
        {"by": ("campaign",), "since": clock.midnight() - dt.timedelta(hours=3)},
    ):
        with CaptureQueriesContext(connection) as read:
            figures([c.pk for c in campaigns], **kwargs)
        assert "adengine_dailystats" not in read.captured_queries[0]["sql"]
        assert "adengine_hourlystats" in read.captured_queries[0]["sql"]


def test_the_dashboard_rows_are_those_of_the_hourly_roll_up(traffic, monkeypatch):
    # given the varied traffic rolled up, and a live tail today
    campaigns, serve = traffic
    update_strategy(lag_seconds=0)
    serve(0, 3, 4, 1, who=2, paid=["42.00"])
    now = timezone.now()
    # when the dashboard reads its rows (from the daily roll-up), and as it did before (from the hourly one)
    with CaptureQueriesContext(connection) as read:
        rows = dashboard_rows(campaigns, now=now)
    assert sum("adengine_dailystats" in q["sql"] for q in read.captured_queries) == 3  # today, total, 14 days
    monkeypatch.setattr(dashboard, "figures", functools.partial(figures, daily=False))
    old = dashboard_rows(campaigns, now=now)
    # then every figure is the same
    for new_row, old_row in zip(rows, old, strict=True):
        assert (new_row.today, new_row.total, new_row.days, new_row.impressions_by_day) == (
            old_row.today,
            old_row.total,
            old_row.days,
            old_row.impressions_by_day,
        )
    assert [r.total.impressions for r in rows] == [12, 9, 11]
    assert rows[0].impressions_by_day[0] == 5 and rows[0].impressions_by_day[-1] == 0  # 13 days ago; today
    assert rows[2].today.revenue == Decimal("42.00") and rows[2].total.clicks == 4


def test_expired_log_days_dropped_leave_both_roll_ups_whole(traffic):
    # given the traffic rolled up, with the log kept 10 days
    campaigns, _ = traffic
    with adengine_settings(LOG_RETENTION_DAYS=10):
        log_partitions.maintain()  # the rows in the default partition moved into their days'
        update_strategy(lag_seconds=0)
        before = dashboard_rows(campaigns)
        # when the maintenance drops the expired days of the log
        done = log_partitions.maintain()
    assert done.dropped and Impression.objects.count() < 28
    # then the roll-ups are as they were and agree, and so does the dashboard
    assert_daily_is_hourly_by_day()
    after = dashboard_rows(campaigns)
    assert [(r.total, r.impressions_by_day) for r in after] == [(r.total, r.impressions_by_day) for r in before]
    assert after[0].total.impressions == 12


def test_erasing_a_shopper_leaves_both_roll_ups_whole(traffic):
    # given a shopper's impressions among the traffic, rolled up
    campaigns, serve = traffic
    shopper = ShopperFactory()
    mine = serve(2, 60, 3, 1, who=0)
    Impression.objects.filter(pk__in=[i.pk for i in mine]).update(shopper=shopper)
    update_strategy(lag_seconds=0)
    hourly, days = hourly_by_day(), daily()
    before = totals([c.pk for c in campaigns])
    # when the shopper's data is erased
    erase_shopper(shopper=shopper)
    # then the roll-ups (which hold no shopper) are untouched, agree, and so do the figures
    assert hourly_by_day() == hourly and daily() == days
    assert_daily_is_hourly_by_day()
    assert totals([c.pk for c in campaigns]) == before


def test_deleting_a_placement_takes_its_rows_from_both_roll_ups(traffic):
    campaigns, _ = traffic
    update_strategy(lag_seconds=0)
    Placement.objects.get(key="side").delete()
    assert_daily_is_hourly_by_day()
    assert not DailyStats.objects.filter(placement__key="side").exists()
    fast, slow = both_ways([c.pk for c in campaigns], by=("campaign",))
    assert fast == slow


def test_after_a_change_of_time_zone_the_daily_roll_up_is_filed_again_by_the_new_days(settings, traffic):
    # given the traffic rolled up by UTC days
    campaigns, _ = traffic
    update_strategy(lag_seconds=0)
    assert_daily_is_hourly_by_day()
    # when the shop moves to UTC+8, its past days are filed under the old days until the roll-up is rebuilt
    settings.TIME_ZONE = "Asia/Shanghai"
    with pytest.raises(AssertionError):
        assert_daily_is_hourly_by_day()
    assert rebuild_daily_rollup() == len(hourly_by_day())
    # then they are the new zone's days
    assert_daily_is_hourly_by_day()
    fast, slow = both_ways([c.pk for c in campaigns], by=("campaign", "day"))
    assert fast == slow
