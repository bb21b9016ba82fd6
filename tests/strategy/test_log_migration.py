"""Migration 0023 converts a populated log into partitioned tables, and back."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from tests.factories import CampaignFactory, CreativeFactory, PlacementFactory

BEFORE = [("adengine", "0022_interest_refresh_at_scale")]
PARTITIONED = [("adengine", "0023_partitioned_log")]


def migrate(targets) -> None:
    """Migrate to ``targets`` (None: the latest migrations)."""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets or executor.loader.graph.leaf_nodes())


def partitioned(table: str) -> bool:
    with connection.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_partitioned_table WHERE partrelid = %s::regclass", [table])
        return cur.fetchone() is not None


def rows() -> list[tuple]:
    with connection.cursor() as cur:
        cur.execute(
            "SELECT i.id, i.nonce, i.served_at, e.id, e.kind FROM adengine_impression i "
            "LEFT JOIN adengine_adevent e ON e.impression_id = i.id ORDER BY i.id, e.id"
        )
        return cur.fetchall()


@pytest.mark.django_db(transaction=True)
def test_the_migration_converts_a_populated_log_and_is_reversible():
    placement = PlacementFactory(key="hero")
    campaign = CampaignFactory()
    creative = CreativeFactory(campaign=campaign)
    try:
        # given the log before 0023 (plain tables) with impressions on three days and clicks
        migrate(BEFORE)
        assert not partitioned("adengine_impression")
        now = dt.datetime.now(dt.UTC)
        with connection.cursor() as cur:
            for n, days_ago in enumerate((0, 0, 3, 45)):
                cur.execute(
                    "INSERT INTO adengine_impression (nonce, decision_id, placement_id, campaign_id, creative_id, "
                    "language, position, propensity, predicted_ctr, relevance, value, candidates, personalised, "
                    "policy, context, landing_url, served_at) VALUES (%s, %s, %s, %s, %s, 'en', 0, 0.5, 0.02, 0.5, "
                    "0.02, 1, false, 'test', '{}', '/', %s) RETURNING id",
                    [uuid.uuid4(), uuid.uuid4(), placement.pk, campaign.pk, creative.pk,
                     now - dt.timedelta(days=days_ago, minutes=n)],
                )  # fmt: skip
                imp = cur.fetchone()[0]
                if n % 2 == 0:
                    cur.execute(
                        "INSERT INTO adengine_adevent (impression_id, campaign_id, kind, status, charge, user_agent, "
                        "occurred_at) VALUES (%s, %s, 'click', 'accepted', 0, 'x', %s)",
                        [imp, campaign.pk, now],
                    )
        before = rows()
        # when it is migrated
        migrate(PARTITIONED)
        # then the tables are partitioned, every row is there, in the partition of its day, and ids go on
        assert partitioned("adengine_impression") and partitioned("adengine_adevent")
        assert rows() == before
        with connection.cursor() as cur:
            cur.execute("SELECT count(*) FROM adengine_impression_default")
            assert cur.fetchone()[0] == 0
            cur.execute("SELECT tableoid::regclass::text, served_at FROM adengine_impression ORDER BY id")
            for table, served in cur.fetchall():
                assert table == f"adengine_impression_p{served.astimezone(dt.UTC):%Y%m%d}"
            cur.execute(
                "INSERT INTO adengine_impression (nonce, decision_id, placement_id, campaign_id, language, position, "
                "propensity, predicted_ctr, relevance, value, candidates, personalised, policy, context, landing_url, "
                "served_at) VALUES (%s, %s, %s, %s, 'en', 0, 0.5, 0.02, 0.5, 0.02, 1, false, 'test', '{}', '/', "
                "now()) RETURNING id",
                [uuid.uuid4(), uuid.uuid4(), placement.pk, campaign.pk],
            )
            assert cur.fetchone()[0] > max(r[0] for r in before)
        after = rows()
        # when it is migrated back
        migrate(BEFORE)
        # then the plain tables hold the same rows
        assert not partitioned("adengine_impression") and not partitioned("adengine_adevent")
        assert rows() == after
    finally:
        migrate(None)  # the latest migrations
        with connection.cursor() as cur:
            cur.execute("TRUNCATE adengine_adevent, adengine_impression")
