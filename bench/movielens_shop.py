"""Turn the MovieLens 100K ratings (a real public interaction data set) into ``shop_import`` CSV files.

A stand-in for "a shop we have never seen": 943 shoppers, 1,682 products with English titles and
genres, behaviour that product text does not explain. Every rating becomes a product view; a rating
of 4 or 5 also becomes an order (ratings a shopper gave in the same second form one order), placed
30 minutes after the view. Times are shifted so that the newest event is yesterday. English only.

The data is not in this repository. RecBole's wheel on PyPI carries it in its atomic format::

    pip download --no-deps recbole==1.2.1 -d /tmp/rb && cd /tmp/rb && unzip -q recbole-1.2.1-py3-none-any.whl
    python bench/movielens_shop.py --dir /tmp/rb/recbole/dataset_example/ml-100k --out /tmp/ml100k
    python manage.py shop_import --products /tmp/ml100k/products.csv --customers /tmp/ml100k/customers.csv \\
        --events /tmp/ml100k/events.csv --orders /tmp/ml100k/orders.csv
    python manage.py adengine_embed && python manage.py adengine_eval_interests --json
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import re
from collections import defaultdict
from pathlib import Path


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:50] or "other"


def convert(src: Path, out: Path, *, buy_from: float = 4.0) -> dict[str, int]:
    """Write products, customers, events and orders CSVs from RecBole's ml-100k atomic files."""
    out.mkdir(parents=True, exist_ok=True)
    name = src.name
    items = {}
    with (src / f"{name}.item").open(encoding="latin-1") as fh:
        next(fh)
        for line in fh:
            iid, title, year, genres = (line.rstrip("\n").split("\t") + ["", "", ""])[:4]
            genre_list = genres.split() or ["unknown"]
            items[iid] = (title.strip() or f"Movie {iid}", year.strip(), genre_list)
    ratings = []
    with (src / f"{name}.inter").open(encoding="latin-1") as fh:
        next(fh)
        for line in fh:
            uid, iid, rating, ts = line.split("\t")
            ratings.append((uid, iid, float(rating), int(float(ts))))
    shift = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=1)
    newest = max(r[3] for r in ratings)

    def at(ts: int, plus: int = 0) -> str:
        return (shift - dt.timedelta(seconds=newest - ts - plus)).isoformat()

    with (out / "products.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["product_id", "category", "category_name_en", "title_en", "description_en", "price", "stock"])
        for iid, (title, year, genres) in items.items():
            main = genres[0]
            label = f"{title} ({year})" if year else title
            w.writerow([f"ml{iid}", _slug(main), main, label[:200], "Genres: " + ", ".join(genres), "9.99", "100"])
    users = sorted({r[0] for r in ratings}, key=int)
    with (out / "customers.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["customer_id", "personalisation"])
        for uid in users:
            w.writerow([f"u{uid}", "1"])
    orders: dict[tuple[str, int], list[str]] = defaultdict(list)
    with (out / "events.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["event_id", "customer_id", "session_id", "kind", "product_id", "query", "occurred_at"])
        for n, (uid, iid, rating, ts) in enumerate(ratings):
            w.writerow([f"e{n}", f"u{uid}", "", "view", f"ml{iid}", "", at(ts)])
            if rating >= buy_from:
                orders[(uid, ts)].append(iid)
    with (out / "orders.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["order_id", "customer_id", "placed_at", "product_id", "quantity", "unit_price"])
        for n, ((uid, ts), iids) in enumerate(sorted(orders.items(), key=lambda kv: kv[0][1])):
            for iid in dict.fromkeys(iids):
                w.writerow([f"o{n}", f"u{uid}", at(ts, 1800), f"ml{iid}", "1", "9.99"])
    return {"products": len(items), "customers": len(users), "views": len(ratings), "orders": len(orders)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, required=True, help="RecBole's ml-100k folder (ml-100k.inter, .item)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    print(convert(args.dir, args.out))


if __name__ == "__main__":
    main()
