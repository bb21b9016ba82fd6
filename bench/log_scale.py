"""The impression log at scale: ``decide()`` with 50,000,000 impressions stored against 0, and campaign reports.

Two databases on the server of ``DATABASE_URL``, copies of bench/serving.py's (10,000 campaigns, 100,000
assets, 1,000,000 shoppers; make them with ``CREATE DATABASE <name> TEMPLATE adengine_bench``): ``--db`` gets
``--rows`` impressions (and a click on 1 % of them) spread evenly over the last ``--days`` UTC days by SQL
``generate_series`` straight into the daily partitions, campaigns drawn with a skew (campaign rank r with
probability ~ 1/sqrt(r): the largest has 1 % of all impressions) and shoppers uniformly; the hourly roll-up is
built from them in SQL as the strategy update builds it, and its watermark set before the last 5 minutes
(the live tail a report reads from the log). ``--empty-db`` has the same campaigns and a log emptied of every
day but today: today's impressions of ``--db`` are copied into it (the frequency cap and session diversity read
today's partition, so both databases hold the same rows there and differ only by the past days).

1. ``decisions``: bench/serving.py's decision loop (``--only decisions``: random shoppers, four placements,
   a live click model, the log's writer thread running) in one process per database, alternating rounds, so
   the ratio is measured side by side: p50 / p99 of ``decide()`` with 50M stored against 0.
2. ``reports``: the admin's campaign report (``selectors.reports.campaign_report``, by day, placement and
   headline over the last 30 days) for the largest campaign and a median one, and the dashboard's rows
   (``selectors.dashboard.dashboard_rows``) for a page of 50 campaigns, from the daily roll-up (migration 0025) and,
   side by side, from the hourly one as before it; the plans of the log's queries.

    .venv/bin/python -m shop.embedded run -- flock /tmp/adengine-bench.lock .venv/bin/python bench/log_scale.py \\
        --db h5_bench --empty-db h5_bench_empty [--rows 50000000] [--days 60] [--only fill|decisions|reports]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CONTEXT = '{"kind": "product", "asset_ctr": 0.021, "page_relevance": 0.41, "interest": 0.37, "explored": false}'
TAIL_MINUTES = 5
TAIL_ROWS = 5_000
MIN_FREE_BYTES = 10 * 2**30


def _url(db: str) -> str:
    return re.sub(r"/[^/?]+(\?|$)", rf"/{db}\1", os.environ["DATABASE_URL"], count=1)


def _setup_django(db: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    os.environ["ADENGINE_BENCH_DATABASE_URL"] = _url(db)
    import django

    django.setup()


def _migrate() -> float:
    from django.core.management import call_command

    t = time.perf_counter()
    call_command("migrate", "adengine", verbosity=0)
    return time.perf_counter() - t


# ---------------------------------------------------------------- filling


def _hourly_indexes_file() -> Path:
    """Where the roll-up's dropped indexes are kept until the fill ends (one file per database)."""
    from django.db import connection

    return Path(f"/tmp/adengine-log-scale-hourly-indexes-{connection.settings_dict['NAME']}.json")


def _index_statements(cur, parent: str, child: str) -> list[str]:
    """The partitioned indexes of ``parent`` as statements that build them on the table ``child``.

    An index behind a primary key or unique constraint becomes that constraint on ``child`` too (``USING INDEX``):
    ATTACH PARTITION then takes it as the partition's, where it would otherwise build a second one beside it.
    """
    cur.execute("SELECT pg_get_indexdef(i.indexrelid), con.contype FROM pg_index i LEFT JOIN pg_constraint con ON "
                "con.conindid = i.indexrelid AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u') "
                "WHERE i.indrelid = %s::regclass", [parent])  # fmt: skip
    out = []
    for n, (definition, constraint) in enumerate(cur.fetchall()):
        body = definition.split(" USING ", 1)[1]
        unique = "UNIQUE " if definition.startswith("CREATE UNIQUE") else ""
        out.append(f"CREATE {unique}INDEX {child}_{n} ON {child} USING {body}")
        if constraint:
            kind = "PRIMARY KEY" if constraint == "p" else "UNIQUE"
            out.append(f"ALTER TABLE {child} ADD CONSTRAINT {child}_{n} {kind} USING INDEX {child}_{n}")
    return out


def _drop_hourly_indexes(cur) -> None:
    """The roll-up is loaded without its indexes (built once at the end, ``_hourly_indexes``)."""
    cur.execute("SELECT c.relname, pg_get_indexdef(i.indexrelid), con.conname FROM pg_index i JOIN pg_class c ON "
                "c.oid = i.indexrelid LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.contype = "
                "'u' WHERE i.indrelid = 'adengine_hourlystats'::regclass AND NOT i.indisprimary")  # fmt: skip
    found = cur.fetchall()
    if not found:
        return
    saved_in = _hourly_indexes_file()
    saved = json.loads(saved_in.read_text()) if saved_in.exists() else []
    saved_in.write_text(json.dumps(saved + [[d, c] for _, d, c in found]))
    for name, _, constraint in found:
        cur.execute(f"ALTER TABLE adengine_hourlystats DROP CONSTRAINT {constraint}" if constraint
                    else f"DROP INDEX {name}")  # fmt: skip


def _hourly_indexes(cur) -> None:
    saved_in = _hourly_indexes_file()
    if not saved_in.exists():
        return
    for definition, constraint in json.loads(saved_in.read_text()):
        name = definition.split(" INDEX ", 1)[1].split(" ON ", 1)[0]
        cur.execute("SELECT to_regclass(%s)", [name])
        if cur.fetchone()[0] is None:
            cur.execute(definition)
            if constraint:
                cur.execute(f"ALTER TABLE adengine_hourlystats ADD CONSTRAINT {constraint} UNIQUE USING INDEX {name}")
    saved_in.unlink()


def fill(rows: int, days: int, *, fresh: bool = False, stop_at=None) -> dict:
    """``rows`` impressions over the last ``days`` days, 1 % clicked, rolled up but for the last minutes.

    Day by day, resumable: each day's impressions and clicks go into tables of their own without indexes, which
    are then indexed as the partitioned tables' indexes say and attached as that day's partitions (faster than
    keeping four b-trees up to date per row); its roll-up is written at once. A day already loaded is kept
    unless ``fresh``; no new day is started after ``stop_at`` (a UTC datetime).
    """
    import datetime as dt

    from django.db import connection, transaction
    from django.utils import timezone

    from adengine.models import StrategyState
    from adengine.services import log_partitions
    from adengine.services.strategy import rebuild_daily_rollup

    migrate_s = _migrate()
    now = timezone.now()
    today = now.astimezone(dt.UTC).date()
    first = today - dt.timedelta(days=days - 1)
    per_day = rows // days
    tz = timezone.get_current_timezone_name()
    tail_start = now - dt.timedelta(minutes=TAIL_MINUTES)
    imp_t, ev_t = "adengine_impression", "adengine_adevent"
    with connection.cursor() as cur:
        cur.execute(
            "CREATE TEMP TABLE bench_camp AS SELECT (row_number() OVER (ORDER BY c.id) - 1)::int AS r, c.id AS "
            "campaign_id, array_agg(a.id ORDER BY a.id) AS creatives FROM adengine_campaign c JOIN adengine_creative "
            "a ON a.campaign_id = c.id GROUP BY c.id"
        )
        cur.execute("CREATE UNIQUE INDEX ON bench_camp (r)")
        cur.execute("SELECT count(*) FROM bench_camp")
        n_camp = cur.fetchone()[0]
        cur.execute("SELECT array_agg(id ORDER BY id) FROM adengine_placement")
        placements = cur.fetchone()[0]
        cur.execute("SELECT min(id), max(id), count(*) FROM adengine_shopper WHERE user_id IS NULL")
        lo, hi, n_shoppers = cur.fetchone()
        assert hi - lo + 1 == n_shoppers, "anonymous shoppers' ids are not contiguous"
        # what is there: days loaded by an earlier (interrupted) run are kept (a day holding fewer rows, such as
        # the serving benchmark's own decisions in the template database, is not a loaded day: the log is emptied)
        loaded = set()
        for day, name in log_partitions.partition_days(imp_t).items():
            cur.execute(f"SELECT count(*) >= %s FROM {name}", [per_day])
            if cur.fetchone()[0] and first <= day and not fresh:
                loaded.add(day)
        if not loaded:
            cur.execute("TRUNCATE adengine_adevent, adengine_impression, adengine_hourlystats, adengine_dailystats")
        _drop_hourly_indexes(cur)
        cur.execute("SET session_replication_role = replica")  # generated consistent: no FK triggers per row
    insert = f"""
        WITH ins AS (
            INSERT INTO {{imp}} (nonce, decision_id, placement_id, campaign_id, creative_id, shopper_id,
                language, position, propensity, predicted_ctr, relevance, value, candidates, personalised, policy,
                context, landing_url, served_at)
            SELECT gen_random_uuid(), gen_random_uuid(), (%(placements)s::bigint[])[1 + s.g %% 4], c.campaign_id,
                   c.creatives[1 + floor(random() * cardinality(c.creatives))::int],
                   %(lo)s + floor(random() * %(n_shoppers)s)::bigint, 'en', 0, 0.1, 0.02, random(), 0.02, 40, true,
                   'contextual-v1', '{CONTEXT}'::jsonb, '/p/bench/', %(start)s + random() * %(span)s
              FROM (SELECT g, least(floor(%(n_camp)s * power(random(), 2))::int, %(n_camp)s - 1) AS r
                      FROM generate_series(1, %(n)s) g) s
              JOIN bench_camp c ON c.r = s.r
            RETURNING id, served_at, campaign_id
        )
        INSERT INTO {{ev}} (impression_id, impression_served_at, campaign_id, kind, status, charge, ip,
                                      user_agent, occurred_at)
        SELECT id, served_at, campaign_id, 'click', 'accepted', 0.5, '10.0.0.0', 'bench', served_at
          FROM ins WHERE random() < 0.01
    """
    hour = "(date_trunc('hour', {c} AT TIME ZONE %(tz)s) AT TIME ZONE %(tz)s)"
    # a click is logged in the second of its impression: its hour, hence its roll-up row, is its impression's
    rollup = f"""
        INSERT INTO adengine_hourlystats (hour, campaign_id, creative_id, placement_id, arm, impressions, views,
            clicks, conversions, spend, revenue)
        SELECT h, campaign_id, creative_id, placement_id, '', sum(i), 0, sum(c), 0, sum(s), 0 FROM (
            SELECT {hour.format(c="served_at")} AS h, campaign_id, creative_id, placement_id, 1 AS i, 0 AS c, 0 AS s
              FROM {{imp}}
            UNION ALL
            SELECT {hour.format(c="e.occurred_at")}, e.campaign_id, i.creative_id, i.placement_id, 0, 1, e.charge
              FROM {{ev}} e JOIN {{imp}} i ON i.id = e.impression_id
        ) x GROUP BY 1, 2, 3, 4
    """
    common = {"placements": placements, "lo": lo, "n_shoppers": n_shoppers, "n_camp": n_camp, "tz": tz}
    t0 = time.perf_counter()
    for d in range(days):
        day = today - dt.timedelta(days=d)  # newest first: today's partition (the frequency cap's) is there first
        if day in loaded:
            continue
        if stop_at is not None and dt.datetime.now(dt.UTC) >= stop_at:
            print(f"  stopped before {day}: --stop-at {stop_at:%H:%M} UTC", flush=True)
            break
        free = shutil.disk_usage(ROOT).free
        if free < MIN_FREE_BYTES:  # the server is shared: leave room for the others
            print(f"  stopped before {day}: {free / 2**30:.1f} GB free on the disk", flush=True)
            break
        start, end = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC), None
        end = start + dt.timedelta(days=1)
        span = min(dt.timedelta(days=1), tail_start - start)
        with transaction.atomic(), connection.cursor() as cur:
            names = {t: log_partitions.partition_name(t, day) for t in (imp_t, ev_t)}
            for table, name in names.items():
                cur.execute(f"DROP TABLE IF EXISTS {name}")  # an empty partition made ahead
                cur.execute(f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
            cur.execute(insert.replace("{imp}", names[imp_t]).replace("{ev}", names[ev_t]),
                        {**common, "start": start, "span": span, "n": per_day})  # fmt: skip
            cur.execute(rollup.replace("{imp}", names[imp_t]).replace("{ev}", names[ev_t]), common)
            for table, name in names.items():
                for statement in _index_statements(cur, table, name):
                    cur.execute(statement)
                key = log_partitions.logs()[0 if table == imp_t else 1].key
                cur.execute(f"ALTER TABLE {name} ADD CONSTRAINT {name}_day CHECK ({key} >= %s AND {key} < %s)",
                            [start, end])  # fmt: skip
                cur.execute(f"ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES FROM (%s) TO (%s)", [start, end])
                cur.execute(f"ALTER TABLE {name} DROP CONSTRAINT {name}_day")
                cur.execute(f"ANALYZE {name}")
        if day < today:  # a closed day: vacuumed as maintain_log_partitions does (all-visible: index-only reach)
            with connection.cursor() as cur:
                for name in names.values():
                    cur.execute(f"VACUUM (ANALYZE) {name}")
        print(f"  {day}: {per_day:,} impressions loaded, indexed, rolled up ({time.perf_counter() - t0:.0f} s)",
              flush=True)  # fmt: skip
    fill_s = time.perf_counter() - t0
    with connection.cursor() as cur:
        for d in range(log_partitions.ad_settings.LOG_PARTITIONS_AHEAD + 1):
            for entry in log_partitions.logs():
                log_partitions.create_partition(entry, today + dt.timedelta(days=d))
        t1 = time.perf_counter()
        _hourly_indexes(cur)
        index_s = time.perf_counter() - t1
        t1 = time.perf_counter()  # the daily roll-up from the hourly one, as migration 0025 fills it
        rebuild_daily_rollup()
        daily_s = time.perf_counter() - t1
        cur.execute("SELECT max(id) FROM adengine_impression")
        imp_mark = cur.fetchone()[0]
        cur.execute("SELECT max(id) FROM adengine_adevent")
        ev_mark = cur.fetchone()[0]
        marks = {"impression_id": imp_mark, "event_id": ev_mark, "updated_at": now}
        StrategyState.objects.update_or_create(key="default", defaults=marks)
        # the live tail: the last minutes, after the roll-up's watermark
        tail = {"start": tail_start, "span": dt.timedelta(minutes=TAIL_MINUTES), "n": TAIL_ROWS}
        cur.execute(insert.replace("{imp}", imp_t).replace("{ev}", ev_t), {**common, **tail})
        cur.execute("SET session_replication_role = DEFAULT")
        t2 = time.perf_counter()
        cur.execute("VACUUM ANALYZE adengine_hourlystats")
        vacuum_s = time.perf_counter() - t2
    return {"migrate_s": round(migrate_s, 1), "fill_s": round(fill_s), "hourly_index_s": round(index_s),
            "daily_s": round(daily_s), "vacuum_s": round(vacuum_s), **sizes()}  # fmt: skip


def sizes() -> dict:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(*), sum(reltuples)::bigint FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'adengine_impression'::regclass"
        )
        partitions, impressions = cur.fetchone()
        out = {"partitions": partitions, "impressions_estimate": impressions}
        for table in ("adengine_impression", "adengine_adevent", "adengine_hourlystats", "adengine_dailystats"):
            cur.execute(
                "SELECT coalesce(sum(pg_table_size(c.oid)), 0), coalesce(sum(pg_indexes_size(c.oid)), 0) FROM "
                "pg_class c WHERE c.oid = %s::regclass OR c.oid IN (SELECT inhrelid FROM pg_inherits WHERE "
                "inhparent = %s::regclass)",
                [table, table],
            )
            data, idx = cur.fetchone()
            out[f"{table}_gb"] = {"data": round(float(data) / 2**30, 2), "indexes": round(float(idx) / 2**30, 2)}
        cur.execute("SELECT count(*) FROM adengine_hourlystats")
        out["hourly_rows"] = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM adengine_dailystats")
        out["daily_rows"] = cur.fetchone()[0]
    return out


# ---------------------------------------------------------------- 1. decisions, side by side
def _copy_today(source: str) -> int:
    """Today's (UTC) impressions of the database ``source``, copied into this one's emptied log: the frequency cap
    and session diversity read today's partition, so both databases start a round with the same rows in it."""
    import datetime as dt

    import psycopg
    from django.db import connection

    midnight = dt.datetime.combine(dt.datetime.now(dt.UTC).date(), dt.time(), tzinfo=dt.UTC)
    with connection.cursor() as cur:
        cur.execute("SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute WHERE attrelid "
                    "= 'adengine_impression'::regclass AND attnum > 0 AND NOT attisdropped")  # fmt: skip
        columns = cur.fetchone()[0]
    connection.ensure_connection()
    raw = connection.connection
    with psycopg.connect(_url(source)) as src, src.cursor() as out, raw.cursor() as into:
        into.execute("SET session_replication_role = replica")  # the same ids everywhere: no FK check per row
        with (
            out.copy(
                f"COPY (SELECT {columns} FROM adengine_impression WHERE served_at >= %s) TO STDOUT", [midnight]
            ) as reader,
            into.copy(f"COPY adengine_impression ({columns}) FROM STDIN") as writer,
        ):
            for block in reader:
                writer.write(block)
        into.execute("SET session_replication_role = DEFAULT")
        into.execute("SELECT setval('adengine_impression_id_seq', (SELECT max(id) FROM adengine_impression))")
        into.execute("SELECT count(*) FROM adengine_impression")
        copied = into.fetchone()[0]
        into.execute("ANALYZE adengine_impression")
    raw.commit()
    return copied


def worker(db: str, *, empty: bool, today_from: str | None = None) -> None:
    """Answer 'run <n> <seed>' lines with bench/serving.py's decision loop on ``db`` (one JSON line each);
    ``empty``: its log is emptied first, then given today's impressions of ``today_from`` (if named)."""
    _setup_django(db)
    _migrate()
    if empty:
        from django.db import connection

        with connection.cursor() as cur:
            cur.execute("TRUNCATE adengine_adevent, adengine_impression, adengine_hourlystats")
            cur.execute("UPDATE adengine_strategystate SET impression_id = 0, event_id = 0")
        if today_from:
            print(f"  {_copy_today(today_from):,} impressions of today copied from {today_from} into {db}",
                  file=sys.stderr, flush=True)  # fmt: skip
    from bench.serving import bench_decisions

    for line in sys.stdin:
        _, n, seed = line.split()
        result = bench_decisions(int(n), int(seed))
        sys.stdout.write("RESULT " + json.dumps(result) + "\n")
        sys.stdout.flush()


def side_by_side(full: str, empty: str, *, decisions: int, rounds: int) -> dict:
    procs = {
        name: subprocess.Popen(
            [sys.executable, __file__, "--worker", db, *(["--empty", "--today-from", full] if name == "empty" else [])],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )  # fmt: skip
        for name, db in (("stored", full), ("empty", empty))
    }
    got: dict[str, list[dict]] = {name: [] for name in procs}
    try:
        for r in range(rounds):
            for name, proc in procs.items() if r % 2 == 0 else reversed(list(procs.items())):
                proc.stdin.write(f"run {decisions} {r + 1}\n")
                proc.stdin.flush()
                while True:
                    line = proc.stdout.readline()
                    if not line:
                        raise RuntimeError(f"the {name} worker ended")
                    if line.startswith("RESULT "):
                        got[name].append(json.loads(line[7:]))
                        break
                print(f"  round {r + 1} {name}: p50 {got[name][-1]['p50_ms']} ms, p99 {got[name][-1]['p99_ms']} ms",
                      flush=True)  # fmt: skip
    finally:
        for proc in procs.values():
            proc.stdin.close()
            proc.wait(timeout=120)
    out = {"decisions_per_round": decisions, "rounds": rounds}
    for name, results in got.items():
        out[name] = {
            "p50_ms": [x["p50_ms"] for x in results],
            "p99_ms": [x["p99_ms"] for x in results],
            "with_shopper_load_p50_ms": [x["with_shopper_load_p50_ms"] for x in results],
        }
    for q in ("p50_ms", "p99_ms"):
        ratios = [a / b for a, b in zip(out["stored"][q], out["empty"][q], strict=True)]
        out[f"ratio_{q}_per_round"] = [round(x, 3) for x in ratios]
        out[f"ratio_{q}_median"] = round(statistics.median(ratios), 3)
    return out


# ---------------------------------------------------------------- 2. reports
def _timed(fn, repeat: int) -> dict:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return {"median_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1)}


def reports(repeat: int = 5) -> dict:
    import datetime as dt

    from django.db import connection
    from django.db.models import Count
    from django.utils import timezone

    from adengine.models import Campaign, Impression
    from adengine.selectors import dashboard
    from adengine.selectors.dashboard import dashboard_rows
    from adengine.selectors.performance import figures
    from adengine.selectors.reports import campaign_report

    today = timezone.localdate()
    since, until = today - dt.timedelta(days=29), today + dt.timedelta(days=1)
    start = timezone.now() - dt.timedelta(days=30)
    # the largest campaign and a median one, by the roll-up
    with connection.cursor() as cur:
        cur.execute(
            "SELECT campaign_id, sum(impressions) FROM adengine_hourlystats WHERE hour >= %s "
            "GROUP BY 1 ORDER BY 2 DESC",
            [start],
        )
        ranked = cur.fetchall()
    picks = {"largest": ranked[0], "median": ranked[len(ranked) // 2]}
    out: dict = {}
    for label, (cid, n) in picks.items():
        campaign = Campaign.objects.get(pk=cid)
        row = {"campaign": cid, "impressions_30_days": int(n)}
        for by in ("day", "placement", "creative"):
            campaign_report(campaign, by=by, since=since, until=until)  # warm
            row[f"by_{by}"] = _timed(lambda c=campaign, b=by: campaign_report(c, by=b, since=since, until=until),
                                     repeat)  # fmt: skip
        rows = campaign_report(campaign, by="day", since=since, until=until)
        row["report_impressions"] = sum(r.impressions for r in rows)
        row["log_impressions"] = Impression.objects.filter(campaign_id=cid, served_at__gte=since).aggregate(
            n=Count("id")
        )["n"]
        out[label] = row
    page = list(Campaign.objects.order_by("-created_at")[:50])
    dashboard_rows(page)
    out["dashboard_50_campaigns"] = _timed(lambda: dashboard_rows(page), repeat)
    with mock.patch.object(dashboard, "figures", functools.partial(figures, daily=False)):  # as before 0025
        dashboard_rows(page)
        out["dashboard_50_campaigns_hourly"] = _timed(lambda: dashboard_rows(page), repeat)
    out["dashboard_parts"] = dashboard_parts(page, repeat)
    out["plans"] = plans(picks["largest"][0])
    return out


def dashboard_parts(page, repeat: int) -> dict:
    """Where the dashboard's time goes: its diagnosis and its three figures queries, each timed alone; and the
    whole-run and 14-day ones read from the hourly roll-up instead of the daily one (as before 0025)."""
    import datetime as dt

    from django.utils import timezone

    from adengine import clock
    from adengine.selectors.dashboard import SPARK_DAYS
    from adengine.selectors.diagnosis import diagnose
    from adengine.selectors.performance import figures

    now = timezone.now()
    ids = [c.pk for c in page]
    first_day = clock.today(now) - dt.timedelta(days=SPARK_DAYS - 1)
    parts = {
        "diagnose": lambda: diagnose(page, now=now),
        "figures_today": lambda: figures(ids, by=("campaign",), since=clock.midnight(now)),
        "figures_total": lambda: figures(ids, by=("campaign",)),
        "figures_by_day_14": lambda: figures(ids, by=("campaign", "day"), since=clock.day_start(first_day)),
        # the same two from the hourly roll-up, as before migration 0025 (daily=False)
        "figures_total_hourly": lambda: figures(ids, by=("campaign",), daily=False),
        "figures_by_day_14_hourly": lambda: figures(
            ids, by=("campaign", "day"), since=clock.day_start(first_day), daily=False
        ),
    }
    return {name: _timed(fn, repeat) for name, fn in parts.items()}


def plans(campaign_id: int) -> dict:
    """EXPLAIN (ANALYZE) of the queries that read the log, to show which index each uses."""
    import datetime as dt

    from django.db import connection
    from django.utils import timezone

    from adengine import clock

    with connection.cursor() as cur:
        cur.execute("SELECT shopper_id FROM adengine_impression WHERE served_at >= %s LIMIT 1", [clock.midnight()])
        shopper = cur.fetchone()[0]
        cur.execute("SELECT nonce, served_at FROM adengine_impression ORDER BY id DESC LIMIT 1")
        nonce, served = cur.fetchone()
        queries = {
            "frequency_cap (SeenToday)": (
                "SELECT campaign_id, count(*) FROM adengine_impression WHERE shopper_id = %s AND served_at >= %s "
                "GROUP BY campaign_id",
                [shopper, clock.midnight()],
            ),
            "token lookup (nonce, served_at)": (
                "SELECT id FROM adengine_impression WHERE nonce = %s AND served_at = %s",
                [nonce, served],
            ),
            "token lookup, nonce alone (older tokens)": (
                "SELECT id FROM adengine_impression WHERE nonce = %s",
                [nonce],
            ),
            "report reach, 30 days": (
                "SELECT count(DISTINCT shopper_id) FROM adengine_impression WHERE campaign_id = %s AND served_at >= %s",
                [campaign_id, timezone.now() - dt.timedelta(days=30)],
            ),
            "report reach by placement, 30 days": (
                "SELECT placement_id, count(DISTINCT shopper_id) FROM adengine_impression WHERE campaign_id = %s AND "
                "served_at >= %s GROUP BY 1",
                [campaign_id, timezone.now() - dt.timedelta(days=30)],
            ),
        }
        out = {}
        for name, (sql, params) in queries.items():
            cur.execute("EXPLAIN (ANALYZE, COSTS OFF, SUMMARY ON) " + sql, params)
            lines = [r[0] for r in cur.fetchall()]
            keep = ("Scan", "Execution", "Planning", "Heap Fetches")
            out[name] = [ln for ln in lines if any(k in ln for k in keep)][:8]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default="h5_bench")
    parser.add_argument("--empty-db", default="h5_bench_empty")
    parser.add_argument("--rows", type=int, default=50_000_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--decisions", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--only", choices=["fill", "decisions", "reports"], action="append")
    parser.add_argument("--fresh", action="store_true", help="fill: start again (else loaded days are kept)")
    parser.add_argument("--stop-at", help="fill: start no new day after this UTC time (HH:MM)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--empty", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--today-from", help=argparse.SUPPRESS)
    parser.add_argument(
        "--no-index-only",
        action="store_true",
        help="reports: SET enable_indexonlyscan = off (each impression's row read from the heap, as before 0024)",
    )
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, empty=args.empty, today_from=args.today_from)
        return
    only = set(args.only or ["fill", "decisions", "reports"])
    results: dict = {}
    _setup_django(args.db)
    if "fill" in only:
        stop_at = None
        if args.stop_at:
            import datetime as dt

            hour, minute = (int(x) for x in args.stop_at.split(":"))
            stop_at = dt.datetime.now(dt.UTC).replace(hour=hour, minute=minute, second=0, microsecond=0)
        results["fill"] = fill(args.rows, args.days, fresh=args.fresh, stop_at=stop_at)
        print(f"fill: {json.dumps(results['fill'])}", flush=True)
    if "reports" in only:
        if args.no_index_only:
            from django.db import connection

            with connection.cursor() as cur:
                cur.execute("SET enable_indexonlyscan = off")
        results["reports"] = reports()
        print(f"reports: {json.dumps(results['reports'])}", flush=True)
    if "decisions" in only:
        from django.db import connections

        connections.close_all()
        results["decisions"] = side_by_side(args.db, args.empty_db, decisions=args.decisions, rounds=args.rounds)
        print(f"decisions: {json.dumps(results['decisions'])}", flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
