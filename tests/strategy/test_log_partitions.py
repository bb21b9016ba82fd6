"""The impression log partitioned by day: partitions made ahead, strays kept and moved, expired days dropped only
once rolled up, and the same reports before and after."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.utils import timezone

from adengine.models import AdEvent, Impression
from adengine.selectors.performance import figures
from adengine.selectors.reports import campaign_report
from adengine.services import log_partitions
from adengine.services.strategy import update_strategy
from adengine.services.tracking import find_impression, restore_impression
from adengine.serving import tokens
from adengine.serving.rows import ImpressionRow, from_micros, to_micros
from tests.conftest import adengine_settings
from tests.factories import CreativeFactory

pytestmark = pytest.mark.django_db

IMP, EV = Impression._meta.db_table, AdEvent._meta.db_table


def utc_today() -> dt.date:
    return timezone.now().astimezone(dt.UTC).date()


def at(day: dt.date, hour: int = 12) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC)


def where(table: str, pk: int) -> str:
    """The partition a row of ``table`` is stored in."""
    with connection.cursor() as cur:
        cur.execute(f"SELECT tableoid::regclass::text FROM {table} WHERE id = %s", [pk])
        return cur.fetchone()[0]


def serve(creative, placement, *, when: dt.datetime, n: int, clicks: int = 0) -> list[Impression]:
    """``n`` impressions of ``creative`` at ``when`` (each of its own shopper-less decision), the first ``clicks``
    of them clicked and billed 1.00."""
    imps = Impression.objects.bulk_create(
        [
            Impression(
                decision_id=uuid.uuid4(), placement=placement, campaign=creative.campaign, creative=creative,
                language="en", propensity=0.5, predicted_ctr=0.02, relevance=0.5, value=0.02, candidates=2,
                personalised=False, policy="test", landing_url="/", served_at=when,
            )
            for _ in range(n)
        ]
    )  # fmt: skip
    for i in imps[:clicks]:
        AdEvent.objects.create(impression=i, campaign=creative.campaign, kind="click", status="accepted",
                               charge=Decimal("1.00"), occurred_at=when + dt.timedelta(minutes=1))  # fmt: skip
    return imps


def test_the_migration_partitions_the_log_by_day_with_a_week_ahead_and_a_default():
    # given the migrated database, then both logs are partitioned, with today to a week ahead and a default partition
    today = utc_today()
    for table in (IMP, EV):
        assert log_partitions.is_partitioned(table)
        days = log_partitions.partition_days(table)
        assert {today + dt.timedelta(days=n) for n in range(0, 8)} <= set(days)
        with connection.cursor() as cur:
            cur.execute("SELECT to_regclass(%s)", [f"{table}_default"])
            assert cur.fetchone()[0] is not None
    # and the primary keys and the nonce's unique key include the partition key
    with connection.cursor() as cur:
        cur.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass AND contype IN "
            "('p', 'u') ORDER BY contype",
            [IMP],
        )
        assert [r[0] for r in cur.fetchall()] == ["PRIMARY KEY (id, served_at)", "UNIQUE (nonce, served_at)"]


def test_the_impression_table_has_only_the_indexes_a_query_needs():
    with connection.cursor() as cur:
        cur.execute("SELECT indexdef FROM pg_indexes WHERE tablename = %s ORDER BY indexname", [IMP])
        columns = sorted(d.split("USING btree ")[1] for (d,) in cur.fetchall())
    assert columns == [
        "(campaign_id, served_at) INCLUDE (shopper_id, placement_id, creative_id)",  # reports' reach: index only
        "(id, served_at)",
        "(nonce, served_at)",
        "(shopper_id, served_at)",
    ]


def test_maintenance_creates_partitions_ahead_and_is_idempotent():
    # given a day three weeks from now
    later = utc_today() + dt.timedelta(days=21)
    # when the maintenance runs as of that day
    with adengine_settings(LOG_PARTITIONS_AHEAD=5):
        done = log_partitions.maintain(today=later)
        again = log_partitions.maintain(today=later)
    # then each log has the partitions of that day's eve to 5 days after it, made once
    for table in (IMP, EV):
        days = log_partitions.partition_days(table)
        assert {later + dt.timedelta(days=n) for n in range(-1, 6)} <= set(days)
        assert log_partitions.partition_name(table, later + dt.timedelta(days=5)) in done.created
    assert again.created == []


def test_a_row_on_a_day_without_a_partition_lands_in_the_default_and_is_moved_into_its_own_day(placement,
                                                                                            make_campaign):  # fmt: skip
    # given an impression (and its click) served 40 days ago, a day no partition was made for
    campaign = make_campaign(headlines=0)
    creative = CreativeFactory(campaign=campaign)
    day = utc_today() - dt.timedelta(days=40)
    (imp,) = serve(creative, placement, when=at(day), n=1, clicks=1)
    click = AdEvent.objects.get(impression=imp)
    # then both were written, to the default partitions
    assert where(IMP, imp.pk) == f"{IMP}_default" and where(EV, click.pk) == f"{EV}_default"
    # when the maintenance runs
    done = log_partitions.maintain()
    # then the day has partitions now, holding the rows, and the default partitions are empty again
    assert where(IMP, imp.pk) == log_partitions.partition_name(IMP, day) in done.created
    assert where(EV, click.pk) == log_partitions.partition_name(EV, day)
    assert Impression.objects.get(pk=imp.pk).nonce == imp.nonce
    assert AdEvent.objects.get(pk=click.pk).impression_id == imp.pk
    assert log_partitions.stray_days(log_partitions.logs()[0]) == []


def test_expired_days_are_dropped_only_once_rolled_up_and_reports_stay_the_same(placement, make_campaign):
    # given traffic 30 and 20 days ago and yesterday, with LOG_RETENTION_DAYS 25
    campaign = make_campaign(headlines=0)
    creative = CreativeFactory(campaign=campaign)
    today = utc_today()
    old, recent = today - dt.timedelta(days=30), today - dt.timedelta(days=20)
    serve(creative, placement, when=at(old), n=5, clicks=2)
    serve(creative, placement, when=at(recent), n=3, clicks=1)
    serve(creative, placement, when=at(today - dt.timedelta(days=1)), n=4)
    with adengine_settings(LOG_RETENTION_DAYS=25):
        log_partitions.maintain()
        old_part = log_partitions.partition_name(IMP, old)
        # when the maintenance runs before the strategy update has rolled that day up
        done = log_partitions.maintain()
        # then the expired day is kept: its rows are not rolled up yet
        assert done.dropped == [] and done.kept == [str(old)]
        assert old in log_partitions.partition_days(IMP)
        # when the strategy update rolls the log up, and reports are read
        update_strategy(lag_seconds=0)
        before = figures([campaign.pk], by=("day",))
        report = [r.as_dict() for r in campaign_report(campaign, by="day")]
        done = log_partitions.maintain()
    # then the expired day (and only it) is dropped, impressions and events
    assert done.dropped == [old_part, log_partitions.partition_name(EV, old)]
    assert old not in log_partitions.partition_days(IMP) and old not in log_partitions.partition_days(EV)
    assert recent in log_partitions.partition_days(IMP)
    assert Impression.objects.filter(campaign=campaign).count() == 7
    # and the campaign's figures are the same: they come from the roll-up
    assert figures([campaign.pk], by=("day",)) == before
    after = [r.as_dict() for r in campaign_report(campaign, by="day")]
    old_key = timezone.localdate(at(old)).isoformat()
    for row_before, row_after in zip(report, after, strict=True):
        if row_before["key"] == old_key:  # reach (distinct shoppers) is read on the log: gone with the day
            row_before = {**row_before, "reach": 0}
        assert row_after == row_before


def test_beat_runs_the_maintenance_on_the_strategy_queue():
    from adengine.queues import queue_for
    from adengine.tasks import beat_schedule, maintain_log_partitions

    # given the beat schedule, then the maintenance is in it, every LOG_PARTITION_INTERVAL_SECONDS
    with adengine_settings(LOG_PARTITION_INTERVAL_SECONDS=600):
        entry = beat_schedule()["adengine.maintain_log_partitions"]
    assert entry == {"task": "adengine.maintain_log_partitions", "schedule": 600.0}
    assert queue_for("adengine.maintain_log_partitions") == "adengine.strategy"
    # and the task runs it (idempotent: a second run has nothing to create, nothing expired)
    maintain_log_partitions()
    assert maintain_log_partitions() == {"created": [], "dropped": [], "kept": [], "vacuumed": []}


def test_a_retention_shorter_than_attribution_needs_is_refused():
    with adengine_settings(LOG_RETENTION_DAYS=3), pytest.raises(ImproperlyConfigured, match="at least 9"):
        log_partitions.maintain()


def test_a_token_carries_its_impressions_time_and_an_older_token_still_reads(placement, make_campaign):
    # given an impression row and the signed token of its URLs
    campaign = make_campaign(headlines=0)
    creative = CreativeFactory(campaign=campaign)
    when = timezone.now().replace(microsecond=123456)
    row = ImpressionRow(
        nonce=uuid.uuid4(), decision_id=uuid.uuid4(), placement_id=placement.pk, campaign_id=campaign.pk,
        creative_id=creative.pk, description_id=None, product_id=None, shopper_id=None, language="en", position=0,
        propensity=None, predicted_ctr=0.02, relevance=0.5, value=0.02, candidates=1, personalised=False,
        policy="test", served_at=when,
    )  # fmt: skip
    data = tokens.read("click", tokens.make(nonce=row.nonce, row=row.signed()))
    # then it names the exact time of its impression (its partition of the log)
    assert data.served_at == when == from_micros(to_micros(when))
    # and a click that comes before the row is restored with that time: the writer's row then completes it
    assert restore_impression(data)
    restored = find_impression(row.nonce, token=data)
    assert restored.served_at == when and restored.policy == "restored"
    # and a token signed before served_at was signed (one field fewer) is still honoured, found by nonce alone
    older = tokens.read("click", _older(row))
    assert older.served_at is None and find_impression(row.nonce, token=older).pk == restored.pk


def _older(row: ImpressionRow) -> str:
    from django.core import signing

    values = [v if v is None or isinstance(v, int | str) else str(v) for v in row.signed()[:-1]]
    return signing.dumps([row.nonce.hex, *values], salt=tokens.SALT, compress=False)
