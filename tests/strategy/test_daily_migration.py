"""Migration 0025 creates the daily roll-up and fills it from the hourly one: a shop upgrading gets its totals at
once, by its own days."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from adengine.selectors.performance import figures
from tests.factories import CampaignFactory, CreativeFactory, PlacementFactory
from tests.strategy.test_daily_rollup import assert_daily_is_hourly_by_day

BEFORE = [("adengine", "0024_reach_index_only")]
DAILY = [("adengine", "0025_daily_rollup")]


def migrate(targets=None) -> None:
    """Migrate to ``targets`` (None: the latest migrations)."""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets or executor.loader.graph.leaf_nodes())


def table_exists(name: str) -> bool:
    with connection.cursor() as cur:
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
        return cur.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_the_migration_fills_the_daily_roll_up_from_the_hourly_one_by_the_shops_days(settings):
    settings.TIME_ZONE = "Asia/Shanghai"  # UTC+8: a shop day is not a UTC day
    zone = ZoneInfo("Asia/Shanghai")
    hero, side = PlacementFactory(key="hero"), PlacementFactory(key="side")
    campaigns = [CampaignFactory(), CampaignFactory()]
    heads = [CreativeFactory(campaign=c) for c in campaigns]
    try:
        # given a shop before 0025 with hourly rows either side of its midnights, of two headlines and an arm
        migrate(BEFORE)
        assert not table_exists("adengine_dailystats")
        first = dt.datetime(2026, 11, 20, tzinfo=zone)
        rows = []
        for n in range(40):
            hour = first + dt.timedelta(hours=7 * n - 1)  # 23:00, 06:00, 13:00, 20:00, 03:00 ... shop time
            c = n % 2
            key = (hour, campaigns[c].pk, heads[c].pk if n % 3 else None, (hero, side)[n % 5 == 0].pk)
            counts = (10 + n, n, n % 4, int(n % 3 == 0), Decimal(n) / 7, Decimal(n * 3))
            rows.append((*key, "4:b" if n % 7 == 0 else "", *counts))
        with connection.cursor() as cur:
            cur.executemany(
                "INSERT INTO adengine_hourlystats (hour, campaign_id, creative_id, placement_id, arm, impressions, "
                "views, clicks, conversions, spend, revenue) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, "
                "round(%s::numeric, 6), %s)",
                rows,
            )
        expected: dict[tuple, list] = defaultdict(lambda: [0, 0, 0, 0, Decimal(0), Decimal(0)])
        for hour, campaign, _creative, placement, _arm, *counts in rows:
            sums = expected[(campaign, hour.astimezone(zone).date(), placement)]
            for k, value in enumerate(counts):
                sums[k] += round(value, 6) if k == 4 else value
        # when it is migrated
        migrate(DAILY)
        # then the daily roll-up holds the hourly rows summed by campaign, shop day and placement
        with connection.cursor() as cur:
            cur.execute(
                "SELECT campaign_id, day, placement_id, impressions, views, clicks, conversions, spend, revenue "
                "FROM adengine_dailystats"
            )
            got = {tuple(r[:3]): list(r[3:]) for r in cur.fetchall()}
        assert got == dict(expected)
        assert len(got) < len(rows)
        assert_daily_is_hourly_by_day()
        # and the figures read from it are those of the hourly roll-up
        ids = [c.pk for c in campaigns]
        for by in (("campaign",), ("campaign", "day"), ("placement",)):
            assert figures(ids, by=by) == figures(ids, by=by, daily=False)
        # and it is reversible: back, the table is gone; forward again, the same rows
        migrate(BEFORE)
        assert not table_exists("adengine_dailystats")
        migrate(DAILY)
        assert_daily_is_hourly_by_day()
    finally:
        migrate()
