"""The demo data generator: big enough, bilingual, seeded, and as untidy as a real shop's behaviour."""

from __future__ import annotations

import csv
import datetime as dt
import random
import statistics
from collections import Counter, defaultdict

import pytest

from fixtures.demo_data import CATALOG, TYPE_FEATURES, build_catalog, build_customers, build_market, generate

END = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
SEED = 7


def _rows(path):
    with path.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _at(row: dict, key: str = "occurred_at") -> dt.datetime:
    return dt.datetime.fromisoformat(row[key])


def _gaps(times: list[dt.datetime]) -> list[dt.timedelta]:
    return [b - a for a, b in zip(times, times[1:], strict=False)]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The full-size demo data as ``make demo`` writes it, read back from the files."""
    paths = generate(tmp_path_factory.mktemp("demo"), end=END, seed=SEED)
    return {name: _rows(path) for name, path in paths.items()}


@pytest.fixture(scope="module")
def truth():
    """The latent side of the same data: catalog, customers and market, drawn as ``generate`` draws them."""
    rng = random.Random(SEED)
    products = build_catalog(rng)
    customers = build_customers(rng, 1200)
    return products, {c.customer_id: c for c in customers}, build_market(rng, products)


def test_sizes_and_languages(demo):
    products, events, orders = demo["products"], demo["events"], demo["orders"]
    assert len(products) == 360
    assert len({p["category"] for p in products}) == len(CATALOG) == 15
    assert len(demo["customers"]) == 1200
    assert all(p["title_en"] and p["title_zh"] and p["description_zh"] for p in products)
    assert len({e["session_id"] for e in events if e["session_id"]}) == 400
    times = [_at(e) for e in events]
    assert (max(times) - min(times)).days >= 30 and max(times) < END
    assert set(Counter(e["kind"] for e in events)) == {"search", "view", "cart"}
    assert 30_000 <= len(events) <= 60_000
    lines = Counter(o["order_id"] for o in orders)
    assert len(lines) >= 2000
    assert set(lines.values()) == {1, 2, 3}


def test_same_seed_same_files(tmp_path):
    a = generate(tmp_path / "a", customers=50, end=END, seed=11)
    b = generate(tmp_path / "b", customers=50, end=END, seed=11)
    c = generate(tmp_path / "c", customers=50, end=END, seed=12)
    for name in a:
        assert a[name].read_bytes() == b[name].read_bytes()
    assert a["events"].read_bytes() != c["events"].read_bytes()


def test_a_few_products_sell_far_more_than_the_rest(demo):
    sold = sorted(Counter(o["product_id"] for o in demo["orders"]).values(), reverse=True)
    top = sold[: len(demo["products"]) // 10]
    assert sum(top) / sum(sold) > 0.3  # 0.1 if every product sold alike
    assert sold[0] >= 10 * statistics.median(sold)


def test_co_purchase_follows_hidden_communities_across_categories(demo, truth):
    # given the hidden communities, which span the catalog and so cannot be read from the text
    products, _, market = truth
    index = {p.product_id: i for i, p in enumerate(products)}
    shared = [set() for _ in products]
    for c, members in enumerate(market.members):
        assert len({products[i].category for i in members}) >= 10
        for i in members:
            shared[i].add(c)

    def cross_category(pairs):
        return [(i, j) for i, j in pairs if products[i].category != products[j].category]

    def same_community(pairs):
        return sum(bool(shared[i] & shared[j]) for i, j in pairs) / len(pairs)

    # when pairs of products of different categories bought by the same customer are counted
    bought = defaultdict(set)
    for o in demo["orders"]:
        bought[o["customer_id"]].add(index[o["product_id"]])
    pairs = cross_category((i, j) for basket in bought.values() for i in basket for j in basket if i < j)
    everything = cross_category((i, j) for i in range(len(products)) for j in range(i + 1, len(products)))
    # then they share a community far more often than any two such products do
    assert len(pairs) > 2000
    assert same_community(pairs) > 3 * same_community(everything)


def test_category_interests_explain_part_of_the_views_not_most(demo, truth):
    products, customers, _ = truth
    category = {p.product_id: p.category for p in products}
    views = [e for e in demo["events"] if e["kind"] == "view" and e["customer_id"]]
    share = sum(category[e["product_id"]] in customers[e["customer_id"]].cats for e in views) / len(views)
    assert 0.3 < share < 0.65  # about 0.13 if browsing ignored the interests, near 1 if it followed them


def test_consumables_are_bought_again_and_nothing_else_is(demo, truth):
    products, _, _ = truth
    by_id = {p.product_id: p for p in products}
    first: dict[tuple[str, str], dt.datetime] = {}
    repeats = []
    for o in demo["orders"]:  # oldest first
        key = (o["customer_id"], o["product_id"])
        if key in first:
            repeats.append((by_id[o["product_id"]], _at(o, "placed_at") - first[key]))
        first.setdefault(key, _at(o, "placed_at"))
    assert len(repeats) >= 80
    assert all(p.replenish_days for p, _ in repeats)
    assert {CATALOG[p.category][0] for p, _ in repeats} >= {"coffee-tea", "pets", "skincare"}
    assert min(gap for _, gap in repeats) >= dt.timedelta(days=7)


def test_sessions_cluster_in_time_and_activity_is_heavy_tailed(demo):
    times = defaultdict(list)
    for e in demo["events"]:
        if e["customer_id"]:
            times[e["customer_id"]].append(_at(e))
    gaps = [g for ts in times.values() for g in _gaps(ts)]
    within = sum(g < dt.timedelta(minutes=10) for g in gaps) / len(gaps)
    sessions = [1 + sum(g > dt.timedelta(hours=1) for g in _gaps(ts)) for ts in times.values()]
    assert within > 0.7  # events come minutes apart within a session ...
    assert statistics.median(sessions) >= 3  # ... in several sessions per customer over the days
    counts = sorted((len(ts) for ts in times.values()), reverse=True)
    assert sum(counts[: len(counts) // 10]) / sum(counts) > 0.25  # the busiest tenth does a quarter or more


def test_orders_mostly_follow_a_view_or_cart_and_many_carts_are_abandoned(demo):
    touched = defaultdict(list)
    for e in demo["events"]:
        if e["customer_id"] and e["kind"] in ("view", "cart"):
            touched[(e["customer_id"], e["product_id"])].append(_at(e))
    ordered = defaultdict(list)
    followed = 0
    for o in demo["orders"]:
        at = _at(o, "placed_at")
        ordered[(o["customer_id"], o["product_id"])].append(at)
        followed += any(at - dt.timedelta(hours=2) <= t <= at for t in touched[(o["customer_id"], o["product_id"])])
    assert 0.8 < followed / len(demo["orders"]) < 1  # mostly after a view in the session, sometimes directly
    carts = [e for e in demo["events"] if e["kind"] == "cart" and e["customer_id"]]
    abandoned = sum(
        not any(_at(e) <= t <= _at(e) + dt.timedelta(hours=2) for t in ordered[(e["customer_id"], e["product_id"])])
        for e in carts
    )
    assert abandoned / len(carts) > 0.3


# what a product of a type must never claim (its category's other types may): the absurd claims the category-wide
# feature sentences used to make
NEVER = {
    "dry cat food": ["washable"],
    "clumping cat litter": ["washable", "grain-free"],
    "dog leash": ["grain-free", "odours"],
    "pet bed": ["grain-free"],
    "chef's knife": ["hobs"],
    "rice cooker": ["hobs"],
    "bamboo cutting board": ["hobs", "stainless steel"],
    "phone case": ["65 W"],
    "scented candle": ["washable", "fibres"],
    "cotton duvet cover": ["scent"],
    "throw blanket": ["scent"],
    "turntable": ["battery"],
    "pour-over kettle": ["Roasted", "valve bag"],
    "espresso machine": ["Roasted", "valve bag"],
    "single-origin coffee beans": ["temperature control"],
    "green tea": ["temperature control"],
    "trekking poles": ["ripstop"],
    "facial cleanser": ["absorbs quickly"],
    "volumising mascara": ["skin tone"],
    "adjustable dumbbells": ["recovery"],
    "silk blouse": ["cashmere", "high-waisted"],
    "cashmere cardigan": ["high-waisted"],
}


def test_feature_sentences_suit_the_product_type(truth):
    products, _, _ = truth
    types = {t: (ci, ti) for ci, c in enumerate(CATALOG) for ti, (t, _) in enumerate(c[4])}
    for ptype, claims in NEVER.items():
        ci, ti = types[ptype]
        texts = [p.row["description_en"] for p in products if (p.category, p.ptype) == (ci, ti)]
        assert len(texts) == 6
        for claim in claims:
            assert not [t for t in texts if claim in t], f"a {ptype} claims {claim!r}"


def test_type_features_keep_the_draws_and_the_category_sentences_that_suit():
    """A product draws two of three sentences whatever its type, so the random stream (prices, stock, all the
    behaviour) is the catalog's of before; a sentence a type shares with its category keeps its position, so
    products that drew two of those kept their text."""
    for _, _, _, _, types, _, features in CATALOG:
        for t_en, _ in types:
            own = TYPE_FEATURES.get(t_en, features)
            assert len(own) == len(features) == 3
            for i, sentence in enumerate(own):
                assert sentence == features[i] or sentence not in features, (t_en, sentence)
