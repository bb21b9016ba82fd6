"""What one behaviour event costs the database at a million shoppers: the event row and its shopper's update.

Every event a shopper makes (a view, a cart, a search) moves ``Shopper.last_event_at``. Until migration 0026 that
column was indexed and the shopper table's pages were full, so each such update wrote a new version of the row
elsewhere and inserted it into every index of the table, both HNSW graphs of interest vectors among them. Since
0026 the update changes no indexed column and the table keeps room on its pages (fillfactor 75), so it can be made
in place (HOT), touching no index.

Runs on a *copy* of a refreshed benchmark database (1,000,000 shoppers with content and hybrid vectors and both
HNSW indexes: ``adengine_bench`` after bench/interest_refresh.py's end-to-end run). It rolls the copy back to
0026's predecessor state if needed (the index on ``last_event_at``, fillfactor 100), then records one view per
shopper through the real code (``services.behaviour.record_event``, each event its own transaction, as a page
view's is), in three rounds of ``--events`` shoppers drawn at random among those with both vectors:

1. ``before``: with the index and full pages, as before 0026;
2. ``after, first update``: migration 0026's change applied (the index dropped, fillfactor 75), other shoppers:
   each row's first update moves it to a page with room (existing pages stay full until rewritten);
3. ``after, again``: the round-2 shoppers' next event, in place.

Per round: the time of ``record_event`` (p50, p99, mean) and how many of the shopper updates were HOT
(``pg_stat_user_tables``). The copy is left in the after state.

    ADENGINE_BENCH_DATABASE_URL=postgresql://postgres:@/my_copy?host=... DATABASE_URL=... \\
    flock /tmp/adengine-bench.lock .venv/bin/python bench/behaviour_writes.py [--events 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OLD_INDEX = "adengine_shopper_last_event_at_b1fd7361"  # 0001's name for the index 0026 drops


def _setup() -> None:
    from bench.serving import setup_copy

    setup_copy(doing="change", copy_of="a refreshed adengine_bench")


def _sql(statement: str, params=None):
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(statement, params)
        return cur.fetchall() if cur.description else None


def _updates() -> tuple[int, int]:
    """The shopper table's updates and HOT updates so far (this session's counts flushed first)."""
    _sql("SELECT pg_stat_force_next_flush()")
    time.sleep(0.6)
    return tuple(_sql("SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'adengine_shopper'")[0])


def _state() -> dict:
    indexes = [r[0] for r in _sql("SELECT indexname FROM pg_indexes WHERE tablename = 'adengine_shopper'")]
    options = _sql("SELECT reloptions FROM pg_class WHERE relname = 'adengine_shopper'")[0][0] or []
    return {"indexes": sorted(indexes), "reloptions": options}


def _round(name: str, shoppers, product) -> dict:
    from adengine.services.behaviour import record_event

    before = _updates()
    times = []
    for shopper in shoppers:
        t = time.perf_counter()
        record_event(shopper=shopper, kind="view", product=product, trigger_refresh=False)
        times.append((time.perf_counter() - t) * 1000)
    after = _updates()
    times.sort()
    out = {
        "round": name,
        "events": len(times),
        "p50_ms": round(statistics.median(times), 3),
        "p99_ms": round(times[int(0.99 * (len(times) - 1))], 3),
        "mean_ms": round(statistics.mean(times), 3),
        "shopper_updates": after[0] - before[0],
        "hot_updates": after[1] - before[1],
        "load": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(out), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=2000, help="shoppers per round (one event each)")
    parser.add_argument("--seed", type=float, default=0.42)
    args = parser.parse_args()
    _setup()
    from adengine.models import Shopper
    from shop.models import Product

    _sql("SELECT setseed(%s)", [args.seed])
    ids = [
        r[0]
        for r in _sql(
            "SELECT id FROM adengine_shopper WHERE interest_vector IS NOT NULL AND interest_hybrid IS NOT NULL "
            "AND personalisation ORDER BY random() LIMIT %s",
            [2 * args.events],
        )
    ]
    if len(ids) < 2 * args.events:
        sys.exit(f"only {len(ids)} shoppers with both vectors: run bench/interest_refresh.py --end-to-end first")
    first, second = ids[: args.events], ids[args.events :]
    product = Product.objects.order_by("pk").first()
    print(f"shoppers: {_sql('SELECT count(*) FROM adengine_shopper')[0][0]:,}; {len(ids):,} drawn", flush=True)
    # the state before 0026: the column indexed, pages full for rows written from now on
    if OLD_INDEX not in _state()["indexes"]:
        t = time.perf_counter()
        _sql(f"CREATE INDEX {OLD_INDEX} ON adengine_shopper (last_event_at)")
        print(f"(re)built the index on last_event_at in {time.perf_counter() - t:.1f} s", flush=True)
    _sql("ALTER TABLE adengine_shopper RESET (fillfactor)")
    print("before:", json.dumps(_state()), flush=True)
    results = [_round("before", Shopper.objects.in_bulk(first).values(), product)]
    # migration 0026's change
    _sql(f"DROP INDEX {OLD_INDEX}")
    _sql("ALTER TABLE adengine_shopper SET (fillfactor = 75)")
    print("after:", json.dumps(_state()), flush=True)
    chosen = list(Shopper.objects.in_bulk(second).values())
    results.append(_round("after, first update", chosen, product))
    results.append(_round("after, again", chosen, product))
    print(json.dumps({"behaviour_writes": results}), flush=True)


if __name__ == "__main__":
    main()
