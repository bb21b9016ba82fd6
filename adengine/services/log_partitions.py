"""The impression log's days: partitions created ahead, rows that found none moved into theirs, expired days dropped.

Impressions (``adengine_impression``, by ``served_at``) and ad events (``adengine_adevent``, by their impression's
``impression_served_at``) are partitioned by the UTC day, one table per day and log (``<table>_pYYYYMMDD``),
with a default partition that takes a row whose day has no partition yet (nothing is ever refused for want of
one). Beat runs ``maintain`` (``adengine.maintain_log_partitions``): it creates the partitions of the next
``LOG_PARTITIONS_AHEAD`` days, moves any rows of the default partition into partitions of their own days,
vacuums the partitions of closed days that were written since their last vacuum (their pages become all-visible:
a report's reach, ``count(DISTINCT shopper_id)`` by campaign, is then read from the (campaign_id, served_at)
index alone, without a heap page per impression), and drops the days older than ``LOG_RETENTION_DAYS`` -- only
once the strategy update has rolled every row of the day up into the hourly statistics (reports read those),
never before.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
from dataclasses import dataclass, field

from django.core.exceptions import ImproperlyConfigured
from django.db import OperationalError, connection, transaction
from django.utils import timezone

from adengine.conf import settings as ad_settings
from adengine.models import AdEvent, Impression, StrategyState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Log:
    """One partitioned log table: its name, its partition key and the strategy watermark that covers it."""

    table: str
    key: str
    watermark: str  # the StrategyState field holding the last id rolled up


def logs() -> tuple[Log, Log]:
    return (
        Log(Impression._meta.db_table, "served_at", "impression_id"),
        Log(AdEvent._meta.db_table, "impression_served_at", "event_id"),
    )


def partition_name(table: str, day: dt.date) -> str:
    return f"{table}_p{day:%Y%m%d}"


def default_name(table: str) -> str:
    return f"{table}_default"


def _bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    return start, start + dt.timedelta(days=1)


def partition_days(table: str) -> dict[dt.date, str]:
    """The days that have a partition of ``table`` (the default partition left out)."""
    pattern = re.compile(rf"^{re.escape(table)}_p(\d{{8}})$")
    with connection.cursor() as cur:
        cur.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass",
            [table],
        )
        names = [r[0] for r in cur.fetchall()]
    days = {}
    for name in names:
        m = pattern.match(name)
        if m:
            days[dt.datetime.strptime(m.group(1), "%Y%m%d").date()] = name
    return days


def is_partitioned(table: str) -> bool:
    with connection.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_partitioned_table WHERE partrelid = %s::regclass", [table])
        return cur.fetchone() is not None


# Partition DDL waits at most this long for its lock, then gives up until the next run: a DDL statement queued
# behind a long report would queue every decision's insert behind itself.
LOCK_TIMEOUT = "5s"


@transaction.atomic
def create_partition(entry: Log, day: dt.date) -> bool:
    """The partition of ``day`` (False if it was there); rows of that day in the default partition move into it.

    Made as a table of its own and attached (ATTACH PARTITION locks the parent only against other DDL, where
    CREATE TABLE ... PARTITION OF would lock out its readers and writers); the default partition is locked while
    its strays move (milliseconds: it holds only rows that found no partition).
    """
    if day in partition_days(entry.table):
        return False
    name, default = partition_name(entry.table, day), default_name(entry.table)
    start, end = _bounds(day)
    qn = connection.ops.quote_name
    with connection.cursor() as cur:
        cur.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        cur.execute(f"CREATE TABLE {qn(name)} (LIKE {qn(entry.table)} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
        cur.execute(f"LOCK TABLE {qn(default)} IN EXCLUSIVE MODE")
        cur.execute(
            f"WITH moved AS (DELETE FROM {qn(default)} WHERE {entry.key} >= %s AND {entry.key} < %s RETURNING *) "
            f"INSERT INTO {qn(name)} SELECT * FROM moved",
            [start, end],
        )
        moved = cur.rowcount
        cur.execute(f"ALTER TABLE {qn(entry.table)} ATTACH PARTITION {qn(name)} FOR VALUES FROM (%s) TO (%s)",
                    [start, end])  # fmt: skip
    if moved:
        log.warning("log partitions: %d row(s) of %s moved from %s into the new %s", moved, day, default, name)
    return True


def stray_days(entry: Log) -> list[dt.date]:
    """The UTC days of the rows waiting in the default partition."""
    qn = connection.ops.quote_name
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT DISTINCT ({entry.key} AT TIME ZONE 'UTC')::date FROM {qn(default_name(entry.table))} ORDER BY 1"
        )
        return [r[0] for r in cur.fetchall()]


def min_retention_days() -> int:
    """The shortest retention the engine lives with: a click is credited with an order for
    ATTRIBUTION_WINDOW_DAYS after it, and it can come TRACKING_CLICK_MAX_AGE after its impression."""
    return (
        int(math.ceil(float(ad_settings.ATTRIBUTION_WINDOW_DAYS) + float(ad_settings.TRACKING_CLICK_MAX_AGE) / 86400))
        + 1
    )


def retention_days() -> int | None:
    """LOG_RETENTION_DAYS (None: keep every day); ImproperlyConfigured when shorter than ``min_retention_days``."""
    value = ad_settings.LOG_RETENTION_DAYS
    if value is None:
        return None
    shortest = min_retention_days()
    if not isinstance(value, int) or value < shortest:
        raise ImproperlyConfigured(
            f"ADENGINE['LOG_RETENTION_DAYS'] = {value!r}: set a whole number of days of at least {shortest} "
            "(ATTRIBUTION_WINDOW_DAYS plus a click's lifetime, TRACKING_CLICK_MAX_AGE, plus a day), or None to "
            "keep the log forever."
        )
    return value


@dataclass
class Maintenance:
    """What ``maintain`` did."""

    created: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # expired but not rolled up yet: dropped by a later run
    vacuumed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"created": self.created, "dropped": self.dropped, "kept": self.kept, "vacuumed": self.vacuumed}


def ensure_partitions(*, today: dt.date | None = None, ahead: int | None = None) -> list[str]:
    """Partitions for yesterday to ``ahead`` days after today (UTC) and for any day in the default partition."""
    today = today or timezone.now().astimezone(dt.UTC).date()
    ahead = int(ad_settings.LOG_PARTITIONS_AHEAD if ahead is None else ahead)
    created = []
    for entry in logs():
        days = {today + dt.timedelta(days=n) for n in range(-1, ahead + 1)} | set(stray_days(entry))
        for day in sorted(days):
            if create_partition(entry, day):
                created.append(partition_name(entry.table, day))
    return created


def _max_id(table: str) -> int | None:
    with connection.cursor() as cur:
        cur.execute(f"SELECT max(id) FROM {connection.ops.quote_name(table)}")
        return cur.fetchone()[0]


def drop_expired(*, today: dt.date | None = None) -> tuple[list[str], list[str]]:
    """Drop the days older than LOG_RETENTION_DAYS whose impressions and events are all rolled up; returns the
    partitions dropped and the days kept for want of a roll-up."""
    keep = retention_days()
    if keep is None:
        return [], []
    today = today or timezone.now().astimezone(dt.UTC).date()
    first_kept = today - dt.timedelta(days=keep)
    state = StrategyState.objects.filter(key="default").first()
    dropped, kept = [], []
    entries = logs()
    days = sorted(set().union(*(partition_days(e.table) for e in entries)))
    for day in days:
        if day >= first_kept:
            break
        try:
            dropped += _drop_day(day, entries, state, kept)
        except OperationalError as exc:  # its lock not had within LOCK_TIMEOUT: the next run tries again
            kept.append(str(day))
            log.warning("log partitions: %s not dropped this time (%s)", day, exc)
    return dropped, kept


def _drop_day(day: dt.date, entries, state, kept: list[str]) -> list[str]:
    """Drop the partitions of ``day`` if rolled up (else note it in ``kept``); returns the partitions dropped."""
    dropped = []
    with transaction.atomic():
        parts = {e: partition_days(e.table).get(day) for e in entries}
        # rolled up: every id of the day at or below the strategy's watermark (it reads ids in order)
        pending = [
            e.table
            for e, name in parts.items()
            if name is not None and (_max_id(name) or 0) > (getattr(state, e.watermark) if state else 0)
        ]
        if pending:
            kept.append(str(day))
            log.warning("log partitions: %s is past LOG_RETENTION_DAYS but not rolled up yet (%s): kept",
                        day, ", ".join(pending))  # fmt: skip
            return []
        with connection.cursor() as cur:
            cur.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            for name in parts.values():
                if name is not None:
                    cur.execute(f"DROP TABLE {connection.ops.quote_name(name)}")
                    dropped.append(name)
    return dropped


def unvacuumed_closed_days(*, today: dt.date | None = None) -> list[str]:
    """The partitions of days before ``today`` (UTC) written to since their last vacuum (or never vacuumed).

    A day's impressions are inserted during that day; afterwards only a view beacon or a shopper's erasure updates
    one, and an event of an older impression (a late click) lands in its day's events partition.
    """
    today = today or timezone.now().astimezone(dt.UTC).date()
    names = []
    for entry in logs():
        closed = {name for day, name in partition_days(entry.table).items() if day < today}
        if not closed:
            continue
        with connection.cursor() as cur:
            cur.execute(
                "SELECT relname FROM pg_stat_user_tables WHERE relname = ANY(%s) AND (n_ins_since_vacuum > 0 "
                "OR n_dead_tup > 0 OR (last_vacuum IS NULL AND last_autovacuum IS NULL)) ORDER BY relname",
                [sorted(closed)],
            )
            names += [r[0] for r in cur.fetchall()]
    return names


def vacuum_closed_days(*, today: dt.date | None = None) -> list[str]:
    """VACUUM (ANALYZE) the partitions of closed days written since their last vacuum; returns those vacuumed.

    Autovacuum would get there too, but only after a fifth of a partition's rows are new (its insert threshold):
    until then a closed day's pages are not all-visible and a reach reads the heap. VACUUM cannot run inside a
    transaction: within one (a test's) nothing is done. A partition whose lock is not had within LOCK_TIMEOUT
    (a DROP of it, say) is left to the next run.
    """
    if connection.in_atomic_block:
        return []
    done = []
    qn = connection.ops.quote_name
    for name in unvacuumed_closed_days(today=today):
        try:
            with connection.cursor() as cur:
                cur.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")
                try:
                    cur.execute(f"VACUUM (ANALYZE) {qn(name)}")
                finally:
                    cur.execute("RESET lock_timeout")
        except OperationalError as exc:
            log.warning("log partitions: %s not vacuumed this time (%s)", name, exc)
            continue
        done.append(name)
    return done


def maintain(*, today: dt.date | None = None) -> Maintenance:
    """Create the days ahead (and those of strays), drop the expired days that are rolled up, then vacuum the
    closed days written since their last vacuum."""
    for entry in logs():
        if not is_partitioned(entry.table):
            raise ImproperlyConfigured(f"{entry.table} is not partitioned: run `manage.py migrate adengine`.")
    done = Maintenance(created=ensure_partitions(today=today))
    done.dropped, done.kept = drop_expired(today=today)
    done.vacuumed = vacuum_closed_days(today=today)
    if done.created or done.dropped or done.vacuumed:
        log.info("log partitions: %s", done.as_dict())
    return done
