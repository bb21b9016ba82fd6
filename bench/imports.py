"""Import speed: ``shop_import``'s orders and events, on a fresh database, first run and idempotent second run.

Synthesises CSV files in the README's format (products, customers, N orders of 1-5 lines each, and
behaviour events of customers and anonymous sessions), creates its own database (``adengine_bench_imports``
on the same server, dropped and re-created each run), loads the products and customers, then imports the
events and the orders twice through ``adengine.services.imports.run_import`` -- the code behind the command.
Prints rows per second for each run; the second run must load nothing (everything reported unchanged).

    python -m shop.embedded run -- .venv/bin/python bench/imports.py [--orders 20000] [--events 100000]
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import random
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BENCH_DB = "adengine_bench_imports"


def _fresh_database() -> str:
    """Drop and create the bench database; returns its URL."""
    import psycopg

    url = os.environ["DATABASE_URL"]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB}")
        conn.execute(f"CREATE DATABASE {BENCH_DB}")
    return re.sub(r"/[^/?]+(\?|$)", rf"/{BENCH_DB}\1", url, count=1)


def _write(path: Path, fields: list[str], rows: list[dict]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return path


def synthesise(out: Path, *, orders: int, events: int, products: int, customers: int, seed: int) -> dict:
    """Write products.csv, customers.csv, events.csv and orders.csv; returns paths and row counts."""
    rng = random.Random(seed)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    skus = [f"P{i:05d}" for i in range(products)]
    product_rows = [
        {
            "product_id": sku,
            "category": f"cat-{i % 20}",
            "category_name_en": f"Category {i % 20}",
            "category_name_zh": f"类别{i % 20}",
            "title_en": f"Product {i}",
            "title_zh": f"商品{i}",
            "brand": f"Brand {i % 40}",
            "price": f"{rng.uniform(5, 500):.2f}",
            "stock": str(rng.randint(0, 100)),
        }
        for i, sku in enumerate(skus)
    ]
    people = [f"c{i:05d}" for i in range(customers)]
    customer_rows = [{"customer_id": c, "email": f"{c}@example.com", "personalisation": "1"} for c in people]
    order_rows = []
    for n in range(orders):
        who, at = rng.choice(people), (now - dt.timedelta(minutes=rng.randint(60, 60 * 24 * 60))).isoformat()
        for sku in rng.sample(skus, rng.randint(1, 5)):
            order_rows.append(
                {
                    "order_id": f"o{n:07d}",
                    "customer_id": who,
                    "placed_at": at,
                    "product_id": sku,
                    "quantity": str(rng.randint(1, 3)),
                    "unit_price": f"{rng.uniform(5, 500):.2f}",
                }
            )
    event_rows = []
    for n in range(events):
        kind = rng.choice(["search", "view", "view", "cart"])
        anonymous = rng.random() < 0.2
        event_rows.append(
            {
                "event_id": f"e{n:08d}",
                "customer_id": "" if anonymous else rng.choice(people),
                "session_id": f"s{rng.randrange(customers // 2)}" if anonymous else "",
                "kind": kind,
                "product_id": "" if kind == "search" else rng.choice(skus),
                "query": f"product {rng.randrange(products)}" if kind == "search" else "",
                "occurred_at": (now - dt.timedelta(minutes=rng.randint(60, 60 * 24 * 60))).isoformat(),
            }
        )
    paths = {
        "products": _write(out / "products.csv", list(product_rows[0]), product_rows),
        "customers": _write(out / "customers.csv", list(customer_rows[0]), customer_rows),
        "events": _write(out / "events.csv", list(event_rows[0]), event_rows),
        "orders": _write(out / "orders.csv", list(order_rows[0]), order_rows),
    }
    return {"paths": paths, "order_lines": len(order_rows), "orders": orders, "events": len(event_rows)}


def _timed(**files: Path) -> tuple[float, object]:
    from adengine.services.imports import run_import

    t0 = time.perf_counter()
    report = run_import(**files)
    return time.perf_counter() - t0, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--products", type=int, default=1_000)
    parser.add_argument("--customers", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    os.environ["ADENGINE_BENCH_DATABASE_URL"] = _fresh_database()
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    with tempfile.TemporaryDirectory() as tmp:
        data = synthesise(
            Path(tmp),
            orders=args.orders,
            events=args.events,
            products=args.products,
            customers=args.customers,
            seed=args.seed,
        )
        paths = data["paths"]
        setup_s, report = _timed(products=paths["products"], customers=paths["customers"])
        assert not report.errors, report.errors[:5]
        results: dict = {"setup_seconds": round(setup_s, 1), **{k: data[k] for k in ("orders", "order_lines")}}
        for kind, unit, n in (("events", "events", data["events"]), ("orders", "order_lines", data["order_lines"])):
            for run in ("first", "second"):
                seconds, report = _timed(**{kind: paths[kind]})
                assert not report.errors, report.errors[:5]
                results[f"{kind}_{run}"] = {
                    "seconds": round(seconds, 2),
                    f"{unit}_per_s": round(n / seconds),
                    "loaded": dict(report.loaded),
                    "unchanged": dict(report.unchanged),
                }
                print(f"{kind} {run} run: {n} {unit} in {seconds:.2f} s = {n / seconds:,.0f} {unit}/s", flush=True)
            assert not results[f"{kind}_second"]["loaded"], f"the second {kind} run loaded rows"
    print(json.dumps(results))


if __name__ == "__main__":
    main()
