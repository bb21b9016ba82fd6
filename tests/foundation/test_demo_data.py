"""The demo data generator: big enough, bilingual, seeded, driven by latent interests."""

from __future__ import annotations

import csv
import datetime as dt
from collections import Counter

from fixtures.demo_data import generate

END = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def _rows(path):
    with path.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_sizes_and_languages(tmp_path):
    paths = generate(tmp_path, end=END)
    products = _rows(paths["products"])
    events = _rows(paths["events"])
    assert len(products) >= 300
    assert len({p["category"] for p in products}) >= 12
    assert len(_rows(paths["customers"])) >= 1000
    assert all(p["title_en"] and p["title_zh"] and p["description_zh"] for p in products)
    times = [dt.datetime.fromisoformat(e["occurred_at"]) for e in events]
    assert (max(times) - min(times)).days >= 30
    assert set(Counter(e["kind"] for e in events)) == {"search", "view", "cart"}
    assert len(_rows(paths["orders"])) > 1000


def test_same_seed_same_files(tmp_path):
    a = generate(tmp_path / "a", customers=50, end=END, seed=11)
    b = generate(tmp_path / "b", customers=50, end=END, seed=11)
    for name in a:
        assert a[name].read_bytes() == b[name].read_bytes()


def test_customers_stick_to_their_interests(tmp_path):
    # latent interests drive behaviour: most of a customer's views fall in a few categories
    paths = generate(tmp_path, customers=200, anonymous=0, end=END, seed=5)
    cat = {p["product_id"]: p["category"] for p in _rows(paths["products"])}
    per_customer: dict[str, Counter] = {}
    for e in _rows(paths["events"]):
        if e["kind"] == "view":
            per_customer.setdefault(e["customer_id"], Counter())[cat[e["product_id"]]] += 1
    shares = [
        sum(c for _, c in cnt.most_common(3)) / sum(cnt.values())
        for cnt in per_customer.values()
        if sum(cnt.values()) >= 10
    ]
    assert sum(shares) / len(shares) > 0.8  # vs 3/15 = 0.2 if browsing were random
