"""A report's reach read from the log's (campaign_id, served_at) index alone: the index carries the shopper
(migration 0024, which rebuilds it on a populated log and back), and the maintenance vacuums closed days so their
pages are all-visible (no heap read)."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from adengine.models import Impression
from adengine.selectors.reports import campaign_report
from adengine.services import log_partitions
from tests.factories import CampaignFactory, CreativeFactory, PlacementFactory, ShopperFactory

IMP = Impression._meta.db_table
PLAIN_INDEX = [("adengine", "0023_partitioned_log")]
REACH_INDEX = [("adengine", "0024_reach_index_only")]


def migrate(targets=None) -> None:
    """Migrate to ``targets`` (None: the latest migrations)."""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets or executor.loader.graph.leaf_nodes())


def utc_today() -> dt.date:
    return timezone.now().astimezone(dt.UTC).date()


def at(day: dt.date, hour: int = 12) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC)


def serve(creative, placement, shoppers, *, when: dt.datetime) -> None:
    """One impression of ``creative`` per shopper in ``shoppers`` (repeats included), at ``when``."""
    Impression.objects.bulk_create(
        [
            Impression(
                decision_id=uuid.uuid4(), placement=placement, campaign=creative.campaign, creative=creative,
                shopper=s, language="en", propensity=0.5, predicted_ctr=0.02, relevance=0.5, value=0.02,
                candidates=2, personalised=False, policy="test", landing_url="/", served_at=when,
            )
            for s in shoppers
        ]
    )  # fmt: skip


def index_definitions(name: str) -> set[str]:
    """The definitions of ``name`` on the partitioned table and of its partitions' indexes, without their names."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i WHERE i.indexrelid = %s::regclass "
            "OR i.indexrelid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = %s::regclass)",
            [name, name],
        )
        return {d.split(" USING ", 1)[1] for (d,) in cur.fetchall()}


def log_reach(campaign_id: int, since: dt.datetime) -> int:
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT count(DISTINCT shopper_id) FROM {IMP} WHERE campaign_id = %s AND served_at >= %s",
            [campaign_id, since],
        )
        return cur.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_the_migration_rebuilds_the_index_with_the_shopper_on_a_populated_log_and_back():
    placement = PlacementFactory(key="hero")
    campaign = CampaignFactory()
    creative = CreativeFactory(campaign=campaign)
    shoppers = [ShopperFactory() for _ in range(4)]
    today = utc_today()
    try:
        # given the partitioned log of 0023, with impressions on three days (one in the default partition)
        migrate(PLAIN_INDEX)
        for days_ago in (0, 1, 60):
            serve(creative, placement, shoppers[: 2 + days_ago % 3], when=at(today - dt.timedelta(days=days_ago)))
        assert index_definitions("adengine_impr_campaign_time") == {"btree (campaign_id, served_at)"}
        since = at(today - dt.timedelta(days=90))
        reach = log_reach(campaign.pk, since)
        # when 0024 is applied
        migrate(REACH_INDEX)
        # then the index of the partitioned table and of every partition carries the shopper, rows untouched
        assert index_definitions("adengine_impr_campaign_time") == {
            "btree (campaign_id, served_at) INCLUDE (shopper_id, placement_id, creative_id)"
        }
        assert Impression.objects.count() == 2 + 3 + 2 and log_reach(campaign.pk, since) == reach == 3
        # when it is reversed, then the index is the plain one again
        migrate(PLAIN_INDEX)
        assert index_definitions("adengine_impr_campaign_time") == {"btree (campaign_id, served_at)"}
        assert Impression.objects.count() == 7
    finally:
        migrate()
        with connection.cursor() as cur:
            cur.execute("TRUNCATE adengine_adevent, adengine_impression")


def _flush_stats() -> None:
    """This backend's table statistics (rows inserted) are written now, not up to a second later."""
    with connection.cursor() as cur:
        cur.execute("SELECT pg_stat_force_next_flush()")
        cur.execute("SELECT 1")


@pytest.mark.django_db(transaction=True)
def test_closed_days_are_vacuumed_once_and_reach_is_read_from_the_index_alone():
    # given a campaign seen by shoppers yesterday and three days ago (some twice), and today
    placement = PlacementFactory(key="hero")
    campaign = CampaignFactory()
    creative = CreativeFactory(campaign=campaign)
    shoppers = [ShopperFactory() for _ in range(6)]
    today = utc_today()
    yesterday, earlier = today - dt.timedelta(days=1), today - dt.timedelta(days=3)
    for entry in log_partitions.logs():  # three days ago has a partition (else its rows wait in the default)
        log_partitions.create_partition(entry, earlier)
    serve(creative, placement, shoppers[:4] + shoppers[:2], when=at(yesterday))
    serve(creative, placement, shoppers[2:], when=at(earlier))
    serve(creative, placement, shoppers[:1], when=timezone.now())
    _flush_stats()
    # when the maintenance runs
    done = log_partitions.maintain()
    # then the closed days' partitions are vacuumed, today's and those ahead are not
    for day in (yesterday, earlier):
        assert log_partitions.partition_name(IMP, day) in done.vacuumed
    assert not [n for n in done.vacuumed if n >= log_partitions.partition_name(IMP, today) and n.startswith(IMP)]
    # and a second run has nothing to vacuum: nothing was written since
    _flush_stats()
    assert log_partitions.maintain().vacuumed == []
    # and a closed day's reach is an index-only scan that reads no heap page
    with connection.cursor() as cur:
        cur.execute("SET enable_seqscan = off")
        cur.execute("SET enable_bitmapscan = off")
        plans = []
        for by in ("", "placement_id", "creative_id"):  # the report's reach in total, by placement, by headline
            cur.execute(
                f"EXPLAIN (ANALYZE, COSTS OFF) SELECT {by + ', ' if by else ''}count(DISTINCT shopper_id) FROM {IMP} "
                f"WHERE campaign_id = %s AND served_at >= %s AND served_at < %s{' GROUP BY 1' if by else ''}",
                [campaign.pk, at(yesterday, 0), at(today, 0)],
            )
            plans.append("\n".join(r[0] for r in cur.fetchall()))
        cur.execute("RESET enable_seqscan")
        cur.execute("RESET enable_bitmapscan")
    for plan in plans:
        assert "Index Only Scan" in plan and "Heap Fetches: 0" in plan, plan
    # and the report's reach is the log's count of distinct shoppers, by day and in total
    since = timezone.localdate(at(earlier)) - dt.timedelta(days=1)
    rows = campaign_report(campaign, by="day", since=since)
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT (served_at AT TIME ZONE %s)::date, count(DISTINCT shopper_id) FROM {IMP} WHERE campaign_id = %s "
            "GROUP BY 1",
            [timezone.get_current_timezone_name(), campaign.pk],
        )
        expected = {d.isoformat(): n for d, n in cur.fetchall()}
    assert {r.key: r.reach for r in rows} == expected
    (whole,) = campaign_report(campaign, by="placement", since=since)
    assert whole.reach == log_reach(campaign.pk, at(earlier, 0)) == 6
