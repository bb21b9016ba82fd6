"""Serving speed: decision latency at scale, the cost of ad slots on a page, and API throughput.

Runs against its own database (``adengine_bench`` on the same server), which it fills once (``--reuse``
keeps it): 10,000 active campaigns of 1,000 advertisers, 100,000 approved headline assets (five per
campaign in English and five in Chinese), 20,000 promoted products, and 1,000,000 shoppers with interest
vectors (mixtures of 200 topics, the campaigns' targets drawn from the same topics).

1. ``decisions``: in-process ``decide()`` with a live contextual click model (and again with the context-free
   policy) for random shoppers (a new one each time, so every frequency-cap
   lookup misses the per-process cache) over the four demo placements and page contexts: p50 / p99 of
   ``decide()``, and of reading the shopper row by key plus ``decide()``. The impression log's writer
   thread runs alongside, as in production.
   ``scoring``: for a shopper who is not personalised, the candidate pool from every campaign against the
   page's kept shortlist (``serving.candidates``), CPU per call.
2. ``page``: the storefront product page's server time (Django test client, in process, logged-in
   shopper) with its ad slot against the same template without the slot, interleaved in one run.
3. ``throughput``: gunicorn (2 workers x 4 threads) serving the decision endpoint and a bare DRF endpoint
   that returns a fixed JSON body, driven by the same load generator (8 keep-alive clients, one per server
   thread) in six alternating rounds: requests per second and their ratio.

    python -m shop.embedded run -- .venv/bin/python bench/serving.py [--reuse]
        [--only decisions|scoring|page|throughput]
        [--counters database|redis]

``ADENGINE_BENCH_DATABASE_URL`` names another database to run on (a copy made with ``CREATE DATABASE ...
TEMPLATE adengine_bench``, so that several people can measure at once).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BENCH_DB = "adengine_bench"


def _bench_database_url() -> str:
    """ADENGINE_BENCH_DATABASE_URL when set (a copy of the bench database, say), else BENCH_DB on DATABASE_URL's
    server."""
    if os.environ.get("ADENGINE_BENCH_DATABASE_URL"):
        return os.environ["ADENGINE_BENCH_DATABASE_URL"]
    url = os.environ["DATABASE_URL"]
    return re.sub(r"/[^/?]+(\?|$)", rf"/{BENCH_DB}\1", url, count=1)


def _setup_django(template_dir: str | None = None) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    os.environ["ADENGINE_BENCH_DATABASE_URL"] = _bench_database_url()
    if template_dir:
        os.environ["ADENGINE_BENCH_TEMPLATES"] = template_dir
    import django

    django.setup()


def setup_copy(*, doing: str, copy_of: str = "adengine_bench") -> None:
    """Django on ``ADENGINE_BENCH_DATABASE_URL``, which must name a copy of ``adengine_bench``, never the database
    itself: the scripts that call this change what they run on (``doing``: "fill", "change")."""
    url = os.environ.get("ADENGINE_BENCH_DATABASE_URL", "")
    if not url:
        sys.exit(f"set ADENGINE_BENCH_DATABASE_URL to a copy of {copy_of}")
    if url.rstrip("/").split("/")[-1].split("?")[0] == BENCH_DB:
        sys.exit(f"refusing to {doing} {BENCH_DB} itself: point ADENGINE_BENCH_DATABASE_URL at a copy")
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    import django

    django.setup()


def _ensure_database() -> None:
    import psycopg

    if os.environ.get("ADENGINE_BENCH_DATABASE_URL"):
        return  # named by the caller: it exists

    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [BENCH_DB]).fetchone():
            conn.execute(f"CREATE DATABASE {BENCH_DB}")


# ---------------------------------------------------------------- data
N_ADVERTISERS, N_CAMPAIGNS, HEADLINES, N_SHOPPERS, N_TOPICS = 1_000, 10_000, 5, 1_000_000, 200
PRODUCTS_PER_CAMPAIGN = 2


def populate(seed: int = 1) -> None:
    """Fill the bench database (idempotent: skipped when the row counts are already there)."""
    import numpy as np
    from django.core.management import call_command
    from django.db import connection, transaction
    from pgvector.psycopg import register_vector

    from adengine.models import Advertiser, Campaign, Creative, Placement, Shopper
    from shop.models import Category, Product

    call_command("migrate", verbosity=0)
    if (
        Campaign.objects.count() == N_CAMPAIGNS
        and Creative.objects.count() == N_CAMPAIGNS * HEADLINES * 2
        and Shopper.objects.count() >= N_SHOPPERS
    ):
        print("bench database already filled", flush=True)
        return
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    topics = rng.normal(size=(N_TOPICS, 384)).astype(np.float32)
    topics /= np.linalg.norm(topics, axis=1, keepdims=True)
    with transaction.atomic():
        for model in (Creative, Campaign, Advertiser, Placement, Product, Category):
            model.objects.all().delete()
        cats = Category.objects.bulk_create(
            [Category(slug=f"cat-{i}", name_en=f"Category {i}", name_zh=f"类别{i}") for i in range(50)]
        )
        products = Product.objects.bulk_create(
            [
                Product(
                    sku=f"B-{i:06d}",
                    category=cats[i % 50],
                    brand=f"Brand {i % 300}",
                    title_en=f"Bench product {i}",
                    title_zh=f"测试商品{i}",
                    price=99,
                    stock=10,
                )
                for i in range(N_CAMPAIGNS * PRODUCTS_PER_CAMPAIGN)
            ],
            batch_size=5000,
        )
        advertisers = Advertiser.objects.bulk_create([Advertiser(name=f"Bench {i}") for i in range(N_ADVERTISERS)])
        for key, fmt, n in (
            ("home-hero", "product", 2),
            ("category-top", "text", 1),
            ("product-sidebar", "product", 2),
            ("search-top", "text", 2),
        ):
            Placement.objects.create(key=key, name=key, format=fmt, max_ads=n)
        campaign_topics = rng.integers(0, N_TOPICS, N_CAMPAIGNS)
        campaigns = []
        for i in range(N_CAMPAIGNS):
            target = topics[campaign_topics[i]] + rng.normal(0, 0.03, 384).astype(np.float32)
            campaigns.append(
                Campaign(
                    advertiser=advertisers[i % N_ADVERTISERS],
                    name=f"Campaign {i}",
                    status="active",
                    languages=["en", "zh"],
                    keywords=[f"kw{i % 2000}", f"theme{i % 500}"],
                    categories=[f"cat-{i % 50}"],
                    bid=round(0.2 + rng.random(), 2),
                    total_budget=10_000,
                    daily_budget=1_000,
                    frequency_cap=10 if i % 2 else 0,
                    tier="house" if i % 500 == 0 else "sponsored",
                    target_vector=target / np.linalg.norm(target),
                )
            )
        campaigns = Campaign.objects.bulk_create(campaigns, batch_size=2000)
        through = Campaign.promoted_products.through
        through.objects.bulk_create(
            [
                through(campaign_id=c.pk, product_id=products[i * PRODUCTS_PER_CAMPAIGN + j].pk)
                for i, c in enumerate(campaigns)
                for j in range(PRODUCTS_PER_CAMPAIGN)
            ],
            batch_size=5000,
        )
        Creative.objects.bulk_create(
            [
                Creative(
                    campaign=c,
                    asset_type="headline",
                    language=lang,
                    text=f"{'Headline' if lang == 'en' else '标题'} {k} of {c.pk}",
                    status="approved",
                    passes_rules=True,
                    score=float(rng.random()),
                )
                for c in campaigns
                for lang in ("en", "zh")
                for k in range(HEADLINES)
            ],
            batch_size=5000,
        )
    print(f"campaigns, assets and products written in {time.perf_counter() - t0:.0f} s", flush=True)
    # 1,000,000 shoppers by COPY; the HNSW index on interest vectors is dropped for the load: the decision
    # path reads a shopper by key (the ANN index serves audience queries, measured in bench/ann_search.py)
    t0 = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute("DROP INDEX IF EXISTS adengine_shopper_interest_half")
        cur.execute("DELETE FROM adengine_impression")
        cur.execute("DELETE FROM adengine_shopper WHERE user_id IS NULL")
    raw = connection.connection
    register_vector(raw)
    with raw.cursor() as cur:
        with cur.copy(
            "COPY adengine_shopper (anonymous_key, personalisation, created_at, interest_vector, interest_model, "
            "interest_events, interest_hybrid_model) FROM STDIN WITH (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["varchar", "bool", "timestamptz", "vector", "varchar", "int4", "varchar"])
            now = time.time()
            import datetime as dt

            created = dt.datetime.fromtimestamp(now, dt.UTC)
            done = 0
            while done < N_SHOPPERS:
                m = min(50_000, N_SHOPPERS - done)
                mix = topics[rng.integers(0, N_TOPICS, (m, 2))]
                w = rng.random((m, 1)).astype(np.float32)
                vec = w * mix[:, 0] + (1 - w) * mix[:, 1] + rng.normal(0, 0.02, (m, 384)).astype(np.float32)
                vec /= np.linalg.norm(vec, axis=1, keepdims=True)
                for i in range(m):
                    copy.write_row((f"bench{done + i:027d}", True, created, vec[i], "bench", 10, ""))
                done += m
    raw.commit()
    with connection.cursor() as cur:
        cur.execute("ANALYZE")
    print(f"{N_SHOPPERS:,} shoppers written in {time.perf_counter() - t0:.0f} s", flush=True)


# ---------------------------------------------------------------- 1. decisions
def install_click_model(seed: int) -> str:
    """A live click model over the bench's placements: the prior's weights moved by noise, with a full covariance
    (what the strategy job would have switched on; serving's cost does not depend on the values)."""
    import numpy as np
    from django.utils import timezone

    from adengine.models import ClickModel, Placement
    from adengine.serving import click_model as cm

    rng = np.random.default_rng(seed)
    placements = tuple(sorted(Placement.objects.values_list("pk", flat=True)))
    mean, precision = cm.prior(placements, base_ctr=0.02, relevance_weight=3.0)
    a = rng.normal(0, 0.05, (len(mean), len(mean)))
    cov = a @ a.T + np.diag(0.01 / precision)
    ClickModel.objects.all().delete()
    noisy = mean + rng.normal(0, 0.3, len(mean))
    ClickModel.objects.create(version="bench", status="live", created_at=timezone.now(), placements=list(placements),
                              mean=noisy.tolist(), cov=cov.tolist(), base_ctr=0.02)  # fmt: skip
    return "bench"


def bench_decisions(n: int, seed: int, policy: str = "contextual") -> dict:
    from django.conf import settings
    from django.test import override_settings

    with override_settings(ADENGINE={**settings.ADENGINE, "SERVING_POLICY": policy}):
        return _bench_decisions(n, seed, policy)


def _bench_decisions(n: int, seed: int, policy: str) -> dict:
    import numpy as np

    from adengine.models import Shopper
    from adengine.serving import PageContext, decide, get_backend

    install_click_model(seed)
    get_backend().invalidate()
    t = time.perf_counter()
    snap = get_backend().snapshot()
    build_s = time.perf_counter() - t
    ids = np.array(Shopper.objects.filter(user__isnull=True).order_by("pk").values_list("pk", flat=True))
    rng = np.random.default_rng(seed)
    products = list(snap.cards)
    contexts = [
        ("home-hero", lambda: PageContext(page="home")),
        ("category-top", lambda: PageContext(page="category", category=f"cat-{rng.integers(50)}")),
        ("product-sidebar", lambda: PageContext(page="product", product=products[rng.integers(len(products))])),
        ("search-top", lambda: PageContext(page="search", query=f"kw{rng.integers(2000)} shoes")),
    ]
    lat: list[float] = []
    alone: list[float] = []
    per: dict[str, list[float]] = {key: [] for key, _ in contexts}
    ads = 0
    for i in range(n + 200):
        key, make = contexts[i % 4]
        pk = int(ids[rng.integers(len(ids))])
        ctx = make()
        lang = "en" if i % 3 else "zh"
        t = time.perf_counter()
        shopper = Shopper.objects.get(pk=pk)
        t1 = time.perf_counter()
        decision = decide(placement_key=key, shopper=shopper, context=ctx, language=lang)
        t2 = time.perf_counter()
        if i >= 200:  # the first 200 warm caches
            lat.append((t2 - t) * 1000)
            alone.append((t2 - t1) * 1000)
            per[key].append((t2 - t1) * 1000)
            ads += len(decision.ads)
    lat.sort()
    alone.sort()
    out = {
        "policy": policy,
        "click_model": snap.click_model.version,
        "campaigns": len(snap.campaigns),
        "assets": int(sum(len(a.creative_ids) for a in snap.arms.values())),
        "shoppers": len(ids),
        "index_build_s": round(build_s, 2),
        "decisions": n,
        "ads_per_decision": round(ads / n, 2),
        "p50_ms": round(alone[len(alone) // 2], 2),
        "p99_ms": round(alone[int(len(alone) * 0.99)], 2),
        "with_shopper_load_p50_ms": round(lat[len(lat) // 2], 2),
        "with_shopper_load_p99_ms": round(lat[int(len(lat) * 0.99)], 2),
        "by_placement_p50_ms": {k: round(statistics.median(v), 2) for k, v in per.items()},
    }
    print(f"decisions: {json.dumps(out)}", flush=True)
    return out


def bench_scoring(repeat: int = 500) -> dict:
    """A not-personalised decision's candidate pool, both ways on the same page: scoring every campaign
    (``score_page`` + ``candidate_pool``, what a personalised decision does) against re-scoring the page's kept
    shortlist (``candidate_pool`` on the cached scores): process CPU per call, best of 5 rounds of ``repeat``."""
    import numpy as np

    from adengine.serving import PageContext, get_backend
    from adengine.serving.candidates import SHORTLIST_FACTOR, candidate_pool, score_page
    from adengine.serving.eligibility import eligible
    from adengine.serving.experiments import default_params

    snap = get_backend().snapshot()
    params = default_params()
    out = {}
    pages = {
        "home-hero": (PageContext(page="home"), "home"),
        "category-top": (PageContext(page="category", category="cat-3"), "category"),
        "search-top": (PageContext(page="search", query="kw7 shoes"), "search"),
    }
    for key, (context, kind) in pages.items():
        placement = snap.placements[key]
        ok = eligible(snap, placement, "en", "en")
        m = 2 * params.candidates + placement.max_ads
        kw = {"lang": "en", "default_lang": "en", "kind": kind, "hour": 10.5}
        decay = np.ones(len(snap.campaigns))  # a shopper who saw five campaigns today
        decay[np.random.default_rng(0).choice(len(decay), 5, replace=False)] = 0.8
        kept = score_page(snap, ok, placement, context, (), params, **kw, shortlist=SHORTLIST_FACTOR * m)
        ways = {
            "every_campaign": lambda a=(snap, ok, placement, context, (), params), kw=kw, d=decay, m=m: candidate_pool(
                score_page(*a, **kw), d, m
            ),
            "shortlist": lambda p=kept, d=decay, m=m: candidate_pool(p, d, m),
        }
        a, b = (f()[1] for f in ways.values())
        assert np.allclose(np.sort(a), np.sort(b))  # the same pool (its values: equal ones may swap places)
        best = {}
        for name in [*ways, *ways]:
            for _ in range(5):
                t = time.process_time()
                for _ in range(repeat):
                    ways[name]()
                ms = (time.process_time() - t) / repeat * 1000
                best[name] = min(best.get(name, ms), ms)
        out[key] = {name: round(ms, 4) for name, ms in best.items()}
    print(f"scoring: {json.dumps(out)}", flush=True)
    return out


# ---------------------------------------------------------------- 2. page
def _template_without_slots() -> str:
    """A template folder whose shop/product.html is the real one minus its {% ad_slot %} line."""
    folder = tempfile.mkdtemp(prefix="adengine-bench-")
    (Path(folder) / "shop").mkdir()
    text = (ROOT / "templates" / "shop" / "product.html").read_text()
    stripped = "\n".join(line for line in text.splitlines() if "{% ad_slot" not in line)
    assert stripped != text
    (Path(folder) / "shop" / "product_noslots.html").write_text(stripped)
    return folder


def page_client(products: int = 500):
    """A test client logged in as the benchmark's personalised shopper (an interest vector of the benchmark's), and
    the SKUs of the first ``products`` products, whose pages it views."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    from adengine.models import Shopper
    from shop.models import Product

    user, _ = get_user_model().objects.get_or_create(username="bench-shopper")
    shopper, _ = Shopper.objects.get_or_create(user=user)
    shopper.interest_vector = Shopper.objects.filter(user__isnull=True).first().interest_vector
    shopper.save()
    client = Client(HTTP_USER_AGENT="Mozilla/5.0 bench")
    client.force_login(user)
    return client, list(Product.objects.order_by("pk").values_list("sku", flat=True)[:products])


def bench_page(n: int) -> dict:
    from django.test.utils import override_settings

    from adengine.serving import get_backend
    from shop import views

    get_backend().snapshot()  # the serving index, built before the first page is timed
    client, skus = page_client()
    original = views.render

    def render_without_slots(request, template, context=None, *a, **kw):
        if template == "shop/product.html":
            template = "shop/product_noslots.html"
        return original(request, template, context, *a, **kw)

    folder = _template_without_slots()
    from django.conf import settings

    templates = [{**settings.TEMPLATES[0], "DIRS": [folder, *settings.TEMPLATES[0]["DIRS"]]}]
    with_slots, without = [], []
    with override_settings(TEMPLATES=templates):
        for i in range(n + 50):
            sku = skus[i % len(skus)]
            for variant in (True, False) if i % 2 else (False, True):
                views.render = original if variant else render_without_slots
                t = time.perf_counter()
                resp = client.get(f"/p/{sku}/")
                ms = (time.perf_counter() - t) * 1000
                assert resp.status_code == 200
                if variant:
                    assert b"adengine-ad" in resp.content, "the product page showed no ad"
                if i >= 50:
                    (with_slots if variant else without).append(ms)
        views.render = original
    out = {
        "requests_each": n,
        "with_slots_p50_ms": round(statistics.median(with_slots), 2),
        "without_slots_p50_ms": round(statistics.median(without), 2),
        "with_slots_mean_ms": round(statistics.mean(with_slots), 2),
        "without_slots_mean_ms": round(statistics.mean(without), 2),
    }
    out["added_p50"] = round(out["with_slots_p50_ms"] / out["without_slots_p50_ms"] - 1, 3)
    out["added_mean"] = round(out["with_slots_mean_ms"] / out["without_slots_mean_ms"] - 1, 3)
    print(f"page: {json.dumps(out)}", flush=True)
    return out


# ---------------------------------------------------------------- 3. throughput
def _load(port: int, path: str, seconds: float, clients: int, sessions: int = 1) -> float:
    """Requests per second from ``clients`` keep-alive connections hammering ``path`` (its ``{i}``: the client's
    number, then which of its ``sessions`` app sessions the request is for, in turn)."""
    stop = time.monotonic() + seconds
    counts = [0] * clients
    errors: list[str] = []

    def worker(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while time.monotonic() < stop:
            try:
                who = f"{i:02d}-{counts[i] % sessions:05d}"
                conn.request("GET", path.replace("{i}", who), headers={"User-Agent": "bench"})
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    errors.append(f"{resp.status}")
                counts[i] += 1
                if resp.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            except (OSError, http.client.HTTPException) as exc:
                errors.append(type(exc).__name__)
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        print(f"  {len(errors)} errors on {path}: {sorted(set(errors))[:5]}", flush=True)
    return sum(counts) / seconds


def _wait_ready(port: int, path: str, clients: int, timeout: float = 600) -> float:
    """Seconds until each of ``clients`` keep-alive connections got a 200 from ``path`` (503s while warming)."""
    t0 = time.monotonic()
    conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=30) for _ in range(clients)]
    ready = [False] * clients
    while not all(ready):
        if time.monotonic() - t0 > timeout:
            raise RuntimeError(f"{path} not ready after {timeout:.0f} s")
        for i, conn in enumerate(conns):
            if ready[i]:
                continue
            try:
                conn.request("GET", path.replace("{i}", f"{i:02d}"), headers={"User-Agent": "bench"})
                resp = conn.getresponse()
                resp.read()
                ready[i] = resp.status == 200
            except (OSError, http.client.HTTPException):
                conn.close()
                conns[i] = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        time.sleep(0.2)
    for conn in conns:
        conn.close()
    return time.monotonic() - t0


def bench_throughput(seconds: float, clients: int, rounds: int = 6, port: int = 8765, sessions: int = 1) -> dict:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.settings"}
    server = subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn", "bench.wsgi:application", "--bind", f"127.0.0.1:{port}",
            "--workers", "2", "--threads", "4", "--worker-class", "gthread", "--keep-alive", "30",
            "--log-level", "warning",
        ],
        cwd=ROOT,
        env=env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                c.request("GET", "/bench/fixed/")
                if c.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.5)
        # new app sessions (so new shoppers) each run: a shopper's impressions of today, which frequency caps
        # read, would otherwise pile up from run to run
        run = f"{int(time.time()):x}"
        decision = f"/api/adengine/v1/decisions/?placement=home-hero&page=home&session=bench-{run}-{{i}}-abcdefgh"
        # each worker builds its serving index in the background at its first decision (answering 503 until it
        # is ready): wait until every client's connection is served, then warm both workers
        ready_s = _wait_ready(port, decision, clients)
        print(f"  decision endpoint ready after {ready_s:.0f} s", flush=True)
        _load(port, decision, 5, clients)
        _load(port, "/bench/fixed/", 2, clients)
        # alternate short rounds: this machine's speed drifts, and one long run of each would compare drifts
        fixed, decisions = [], []
        for _ in range(rounds):
            fixed.append(_load(port, "/bench/fixed/", seconds / rounds, clients))
            decisions.append(_load(port, decision, seconds / rounds, clients, sessions))
    finally:
        server.terminate()
        server.wait(timeout=30)
    ratios = [d / f for d, f in zip(decisions, fixed, strict=True)]
    out = {
        "seconds_each": seconds,
        "rounds": rounds,
        "clients": clients,
        "sessions_per_client": sessions,
        "fixed_rps": [round(x, 1) for x in fixed],
        "decisions_rps": [round(x, 1) for x in decisions],
        "ratio_per_round": [round(x, 3) for x in ratios],
        "ratio_median": round(statistics.median(ratios), 3),
        "ratio_of_totals": round(sum(decisions) / sum(fixed), 3),
    }
    print(f"throughput: {json.dumps(out)}", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["decisions", "scoring", "page", "throughput"], action="append")
    parser.add_argument("--decisions", type=int, default=2000)
    parser.add_argument("--pages", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=30, help="per endpoint, split into rounds")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument(
        "--sessions",
        type=int,
        default=1,
        help="app sessions per client, asked for in turn (1: each client one session, as the issue's figure; "
        "more: shoppers who each see fewer ads, as real traffic)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--counters",
        choices=["database", "redis"],
        default="database",
        help="where frequency caps are reserved (SHARED_COUNTERS): PostgreSQL, or the broker's Redis",
    )
    args = parser.parse_args()
    os.environ["ADENGINE_BENCH_COUNTERS"] = (
        os.environ["CELERY_BROKER_URL"] if args.counters == "redis" else "database"
    )  # read by bench/settings.py, in this process and the gunicorn one
    print(f"frequency caps reserved in: {args.counters}", flush=True)
    only = set(args.only or ["decisions", "scoring", "page", "throughput"])
    _ensure_database()
    _setup_django()
    populate(args.seed)
    results = {}
    if "decisions" in only:
        results["decisions"] = bench_decisions(args.decisions, args.seed)
        results["decisions_context_free"] = bench_decisions(args.decisions, args.seed, policy="thompson")
    if "scoring" in only:
        results["scoring"] = bench_scoring()
    if "page" in only:
        results["page"] = bench_page(args.pages)
    if "throughput" in only:
        from django.db import connections

        connections.close_all()
        results["throughput"] = bench_throughput(args.seconds, args.clients, sessions=args.sessions)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
