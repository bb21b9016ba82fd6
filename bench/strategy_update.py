"""Strategy update at scale: one 5-minute window of 1,000,000 impressions over 10,000 campaigns.

Fills a *copy* of ``adengine_bench`` (10,000 campaigns, 100,000 headline assets; built by bench/serving.py) with
one 5-minute window of impressions (assets drawn with a skew, so some campaigns get far more traffic than others;
a tenth in an experiment arm), view events for about half of them, clicks for ``--click-rate`` of them (charged)
and conversions for ``--conversion-rate`` of the clicks -- all inserted by SQL (generate_series), not the ORM.
The log read before the window is rolled up first (untimed). Then it times ``update_strategy`` -- the function the
beat task ``adengine.update_strategy`` runs -- on that window, ``--rounds`` times, each inside a transaction that
is rolled back, so every round processes the same window from the same watermark.

    psql ... -c 'CREATE DATABASE my_bench TEMPLATE adengine_bench'
    ADENGINE_BENCH_DATABASE_URL=postgresql://postgres:@/my_bench?host=/work/main/.data/pg \\
        flock /tmp/adengine-bench.lock .venv/bin/python bench/strategy_update.py [--rounds 3] [--profile]

A second run reuses the window it finds (impressions with policy ``bench-strategy``).
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import json
import os
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MARK = "bench-strategy"  # the policy column of the benchmark's impressions
WINDOW = dt.timedelta(minutes=5)


class Rollback(Exception):
    """Raised to undo a timed round."""


def _setup() -> None:
    if "ADENGINE_BENCH_DATABASE_URL" not in os.environ:
        sys.exit("set ADENGINE_BENCH_DATABASE_URL to a copy of adengine_bench (CREATE DATABASE ... TEMPLATE ...)")
    if os.environ["ADENGINE_BENCH_DATABASE_URL"].rstrip("/").split("/")[-1].split("?")[0] == "adengine_bench":
        sys.exit("refusing to fill adengine_bench itself: point ADENGINE_BENCH_DATABASE_URL at a copy")
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    import django

    django.setup()


def _existing_window() -> dt.datetime | None:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT min(served_at) FROM adengine_impression WHERE policy = %s", [MARK])
        return cur.fetchone()[0]


def fill(*, impressions: int, view_rate: float, click_rate: float, conversion_rate: float, seed: float) -> dict:
    """Roll up what is logged already, then insert the window's impressions, events and conversions by SQL."""
    from django.db import connection, transaction
    from django.utils import timezone

    from adengine.services.strategy import update_strategy

    start = timezone.now().replace(second=0, microsecond=0) - dt.timedelta(minutes=10)
    t = time.perf_counter()
    before = update_strategy(now=start, lag_seconds=0)  # the log before the window: not part of the timing
    caught_up = time.perf_counter() - t
    seconds = WINDOW.total_seconds()
    t = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SELECT setseed(%s)", [seed])
        cur.execute(
            "CREATE TEMP TABLE bench_assets ON COMMIT DROP AS SELECT row_number() OVER (ORDER BY id) AS n, id, "
            "campaign_id, language FROM adengine_creative WHERE asset_type = 'headline' AND status = 'approved'"
        )
        cur.execute("SELECT count(*) FROM bench_assets")
        assets = cur.fetchone()[0]
        cur.execute("SELECT array_agg(id ORDER BY id) FROM adengine_placement")
        placements = cur.fetchone()[0]
        cur.execute("SELECT min(id), max(id) FROM adengine_shopper")
        lo_shopper, hi_shopper = cur.fetchone()
        # assets drawn with a skew (random()^2: the busiest get ~10x the median's traffic); shoppers uniformly
        cur.execute(
            """
            INSERT INTO adengine_impression (nonce, decision_id, language, position, propensity, predicted_ctr,
                relevance, value, candidates, personalised, policy, context, landing_url, served_at, viewed_at,
                campaign_id, creative_id, placement_id, shopper_id)
            SELECT gen_random_uuid(), gen_random_uuid(), a.language, 0, 0.5, 0.02, d.rel, 0.1, 12, true, %(mark)s,
                   CASE WHEN d.g %% 10 = 0 THEN jsonb_build_object('experiment', 1, 'arm', CASE WHEN d.g %% 20 = 0
                        THEN 'a' ELSE 'b' END) ELSE '{}'::jsonb END,
                   '', d.at, CASE WHEN d.r < %(views)s THEN d.at + interval '2 seconds' END,
                   a.campaign_id, a.id, (%(placements)s::bigint[])[1 + d.g %% cardinality(%(placements)s::bigint[])],
                   %(slo)s + floor(random() * (%(shi)s - %(slo)s + 1))::bigint
            FROM (
                SELECT g, 1 + floor(power(random(), 2) * %(assets)s)::int AS pick, random() AS r, random() AS rel,
                       %(start)s + (g - 1) * (%(seconds)s / %(n)s) * interval '1 second' AS at
                FROM generate_series(1, %(n)s) g
            ) d JOIN bench_assets a ON a.n = d.pick
            """,
            {
                "mark": MARK,
                "views": view_rate,
                "placements": placements,
                "slo": lo_shopper,
                "shi": hi_shopper,
                "assets": assets,
                "start": start,
                "seconds": seconds,
                "n": impressions,
            },
        )
        cur.execute(
            """
            INSERT INTO adengine_adevent (kind, status, charge, ip, user_agent, occurred_at, campaign_id,
                impression_id, impression_served_at)
            SELECT 'view', 'accepted', 0, '10.0.0.1', 'bench', viewed_at, campaign_id, id, served_at
            FROM adengine_impression WHERE policy = %(mark)s AND viewed_at IS NOT NULL
            """,
            {"mark": MARK},
        )
        # clicks: about click_rate of impressions (duplicates and bots among them: logged, not counted)
        cur.execute(
            """
            INSERT INTO adengine_adevent (kind, status, charge, ip, user_agent, occurred_at, campaign_id,
                impression_id, impression_served_at)
            SELECT 'click', CASE WHEN r < %(rate)s * 0.95 THEN 'accepted' ELSE 'bot' END,
                   CASE WHEN r < %(rate)s * 0.95 THEN 0.30 ELSE 0 END, '10.0.0.2', 'bench',
                   served_at + interval '5 seconds', campaign_id, id, served_at
            FROM (SELECT id, campaign_id, served_at, random() AS r FROM adengine_impression
                  WHERE policy = %(mark)s) i WHERE r < %(rate)s
            """,
            {"mark": MARK, "rate": click_rate},
        )
        cur.execute("ANALYZE adengine_impression, adengine_adevent")  # the rows just written: a plan that joins
        cur.execute(
            """
            INSERT INTO adengine_conversion (order_key, revenue, ordered_at, created_at, campaign_id, click_id,
                shopper_id, impression_id, reversed_at)
            SELECT 'bench-' || e.id, round((10 + random() * 190)::numeric, 2), e.occurred_at + interval '20 seconds',
                   e.occurred_at + interval '20 seconds', e.campaign_id, e.id, i.shopper_id, i.id,
                   CASE WHEN random() < 0.05 THEN e.occurred_at + interval '25 seconds' END
            FROM adengine_adevent e JOIN adengine_impression i ON i.id = e.impression_id
                 AND i.served_at = e.impression_served_at
            WHERE i.policy = %(mark)s AND e.kind = 'click' AND e.status = 'accepted' AND random() < %(rate)s
            """,
            {"mark": MARK, "rate": conversion_rate},
        )
    with connection.cursor() as cur:
        cur.execute("ANALYZE adengine_impression, adengine_adevent, adengine_conversion")
    return {"caught_up": before, "catch_up_s": round(caught_up, 1), "fill_s": round(time.perf_counter() - t, 1)}


def window_counts(start: dt.datetime) -> dict:
    """What the window holds."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(*), count(DISTINCT campaign_id), count(DISTINCT creative_id) FROM adengine_impression "
            "WHERE policy = %s",
            [MARK],
        )
        n, campaigns, assets = cur.fetchone()
        cur.execute(
            "SELECT e.kind, count(*) FROM adengine_adevent e JOIN adengine_impression i ON i.id = e.impression_id "
            "WHERE i.policy = %s GROUP BY e.kind",
            [MARK],
        )
        events = dict(cur.fetchall())
        cur.execute(
            "SELECT count(*) FROM adengine_conversion c JOIN adengine_impression i ON i.id = c.impression_id "
            "WHERE i.policy = %s",
            [MARK],
        )
        conversions = cur.fetchone()[0]
    return {"impressions": n, "campaigns": campaigns, "assets": assets, **events, "conversions": conversions}


def time_update(start: dt.datetime, *, rounds: int, profile: bool, function) -> list[float]:
    """Seconds of each round of ``function(now=...)`` on the window, each rolled back."""
    from django.db import transaction

    now = start + WINDOW + dt.timedelta(seconds=60)  # past the window's last conversion, with lag 0
    times = []
    result = None
    for i in range(rounds):
        profiler = cProfile.Profile() if profile and i == rounds - 1 else None
        try:
            with transaction.atomic():
                t = time.perf_counter()
                if profiler:
                    profiler.enable()
                result = function(now=now, lag_seconds=0)
                if profiler:
                    profiler.disable()
                times.append(time.perf_counter() - t)
                raise Rollback
        except Rollback:
            pass
        print(f"round {i + 1}: {times[-1]:.2f} s  {result}", flush=True)
    if profile:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--impressions", type=int, default=1_000_000)
    parser.add_argument("--view-rate", type=float, default=0.5, help="share of impressions viewed")
    parser.add_argument("--click-rate", type=float, default=0.02, help="share of impressions clicked")
    parser.add_argument("--conversion-rate", type=float, default=0.05, help="share of counted clicks converting")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=float, default=0.16)
    parser.add_argument("--profile", action="store_true", help="cProfile the last round")
    parser.add_argument(
        "--reference", action="store_true", help="also time the previous per-row implementation (tests/strategy)"
    )
    args = parser.parse_args()
    _setup()
    from django.db import connection

    start = _existing_window()
    if start is None:
        filled = fill(
            impressions=args.impressions,
            view_rate=args.view_rate,
            click_rate=args.click_rate,
            conversion_rate=args.conversion_rate,
            seed=args.seed,
        )
        print(f"filled: {filled}", flush=True)
        start = _existing_window()
    counts = window_counts(start)
    print(f"window {start:%Y-%m-%d %H:%M} + 5 min on {connection.settings_dict['NAME']}: {counts}", flush=True)
    from adengine.services.strategy import update_strategy

    functions = {"set-based": update_strategy}
    if args.reference:
        from tests.strategy.reference_strategy import update_strategy as reference

        functions["per-row (before)"] = reference
    figures = {}
    for name, function in functions.items():
        times = time_update(start, rounds=args.rounds, profile=args.profile, function=function)
        figures[name] = {"best_s": round(min(times), 2), "median_s": round(sorted(times)[len(times) // 2], 2)}
        print(f"{name}: best {min(times):.2f} s, rounds {[round(x, 2) for x in times]}", flush=True)
    print(json.dumps({"window": counts, "figures": figures, "load": os.getloadavg()}))


if __name__ == "__main__":
    main()
