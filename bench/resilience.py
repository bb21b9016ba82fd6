"""Resilience under load: 50 shoppers for 60 s against gunicorn, a Celery worker and beat, and a broker restart.

Starts its own database (``adengine_resilience`` on the server of ``DATABASE_URL``, recreated each run), its
own embedded Redis broker (in a temporary folder, so it can be stopped and started again), gunicorn (2
workers x 8 threads), one Celery worker and Celery beat with the strategy update due every 10 s. Then 50
clients, each with its own address behind one trusted proxy (``X-Forwarded-For``), load storefront pages
(home, category and product pages, each with an ad slot) and the decision API, fire each ad's view beacon,
click some ads and replay some clicks. ``--restart-at`` seconds in, the broker is stopped for ``--outage``
seconds and started again. At the end gunicorn is stopped with SIGTERM (as a deployment does) and the
worker and beat after it.

It reports and checks: server errors on pages and on the API; impressions served (their signed tokens seen
by the clients) that are missing from the log; clicks billed twice (a replay charged, or two counted clicks
of one impression); overspend (a campaign's spend above its total budget, a day's above its daily budget,
or billing that does not add up to the events' charges); and the strategy update's runs seen in the
worker's log, before and after the broker restart.

    python -m shop.embedded run -- .venv/bin/python bench/resilience.py [--clients 50 --seconds 60]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DB = "adengine_resilience"
PLACEMENTS = (("home-hero", "product", 2), ("category-top", "text", 1), ("product-sidebar", "product", 2))
VIEW = re.compile(r"/ads/v/([^\"/?]+)\.gif")
CLICK = re.compile(r"class=\"adengine-link\" href=\"([^\"]+)\"")
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"


def _database_url() -> str:
    return re.sub(r"/[^/?]+(\?|$)", rf"/{DB}\1", os.environ["DATABASE_URL"], count=1)


def _fresh_database() -> None:
    import psycopg

    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB}")


def populate(seed: int) -> dict:
    """Products in four categories, three placements, 30 campaigns with approved copy; a third on small
    daily budgets that the load spends, so overspend would show."""
    from decimal import Decimal

    from django.core.management import call_command

    from adengine.models import Advertiser, Campaign, Creative, Placement
    from shop.models import Category, Product

    call_command("migrate", verbosity=0)
    rng = random.Random(seed)
    cats = [Category.objects.create(slug=s, name_en=s.title(), name_zh=s) for s in ("shoes", "tea", "audio", "pets")]
    products = [
        Product.objects.create(
            sku=f"R-{i:04d}", category=cats[i % 4], brand=f"Brand {i % 7}", title_en=f"Product {i}",
            title_zh=f"商品{i}", price=Decimal(20 + i), stock=100,
        )
        for i in range(40)
    ]  # fmt: skip
    for key, fmt, n in PLACEMENTS:
        Placement.objects.create(key=key, name=key, format=fmt, max_ads=n)
    for i in range(30):
        advertiser = Advertiser.objects.create(name=f"Advertiser {i}")
        cpm = i % 10 == 9
        campaign = Campaign.objects.create(
            advertiser=advertiser, name=f"Campaign {i}", status=Campaign.Status.ACTIVE, languages=["en"],
            pricing=Campaign.Pricing.CPM if cpm else Campaign.Pricing.CPC,
            bid=Decimal("4.00") if cpm else Decimal(rng.choice(["0.30", "0.50", "0.80"])),
            total_budget=Decimal("1000"), daily_budget=Decimal("3.00") if i % 3 == 0 else None,
            categories=[cats[i % 4].slug], keywords=[cats[i % 4].slug],
        )  # fmt: skip
        campaign.promoted_products.set([products[i], products[(i + 10) % 40]])
        for j in range(2):
            Creative.objects.create(
                campaign=campaign, asset_type=Creative.AssetType.HEADLINE, language="en",
                text=f"{cats[i % 4].name_en} offer {i}.{j}", status=Creative.Status.APPROVED, passes_rules=True,
                score=0.5,
            )  # fmt: skip
    return {"products": [p.sku for p in products], "categories": [c.slug for c in cats]}


class Tally:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.codes: Counter = Counter()
        self.view_tokens: set[str] = set()
        self.errors: Counter = Counter()
        self.replays: Counter = Counter()

    def code(self, what: str, status: int) -> None:
        with self.lock:
            self.codes[(what, status)] += 1


def _client(i: int, port: int, stop: float, shop: dict, tally: Tally, seed: int) -> None:
    rng = random.Random(seed * 1000 + i)
    headers = {"User-Agent": BROWSER, "X-Forwarded-For": f"10.{i // 200}.{i % 200}.7"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    clicked: list[str] = []

    def get(what: str, path: str) -> tuple[int, str]:
        nonlocal conn
        for attempt in range(2):
            try:
                conn.request("GET", path, headers=headers)
                resp = conn.getresponse()
                body = resp.read().decode(errors="replace")
                tally.code(what, resp.status)
                if resp.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                return resp.status, body
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                if attempt:
                    with tally.lock:
                        tally.errors[f"{what}: {type(exc).__name__}"] += 1
                    return 0, ""
        return 0, ""

    while time.monotonic() < stop:
        r = rng.random()
        if r < 0.55:
            kind = rng.choice(["home", "category", "product"])
            path = {
                "home": "/",
                "category": f"/c/{rng.choice(shop['categories'])}/",
                "product": f"/p/{rng.choice(shop['products'])}/",
            }[kind]
            status, body = get(f"page:{kind}", path)
            views = VIEW.findall(body)
            clicks = CLICK.findall(body)
        else:
            placement = rng.choice(PLACEMENTS)[0]
            status, body = get("api:decision", f"/api/adengine/v1/decisions/?placement={placement}&page=home")
            views, clicks = [], []
            if status == 200:
                for ad in json.loads(body).get("ads", []):
                    views.extend(VIEW.findall(ad["view_url"]))
                    clicks.append(urlsplit(ad["click_url"]).path)
        with tally.lock:
            tally.view_tokens.update(views)
        for token in views:
            get("beacon", f"/ads/v/{token}.gif")
        if clicks and rng.random() < 0.25:
            url = rng.choice(clicks)
            get("click", url)
            clicked.append(url)
        if clicked and rng.random() < 0.1:  # a replayed click: must be refused, never billed
            status, _ = get("replay", rng.choice(clicked))
            with tally.lock:
                tally.replays[status] += 1
    conn.close()


def _wait_http(port: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/", headers={"User-Agent": BROWSER})
            if c.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.5)
    raise SystemExit("gunicorn did not come up")


def _stop(proc: subprocess.Popen, timeout: float = 60) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--restart-at", type=float, default=20, help="seconds into the load; 0: no restart")
    parser.add_argument("--outage", type=float, default=5, help="seconds the broker stays down")
    parser.add_argument("--port", type=int, default=8791)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    from shop import embedded

    _fresh_database()
    work = Path(tempfile.mkdtemp(prefix="adengine-resilience-"))
    broker = embedded.ensure_redis(work)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.resilience_settings",
        "ADENGINE_BENCH_DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": broker,
        "CELERY_RESULT_BACKEND": broker,
    }
    os.environ.update(env)
    import django

    django.setup()
    shop = populate(args.seed)
    from django.db import connections

    connections.close_all()
    logs = {name: open(work / f"{name}.log", "w") for name in ("web", "worker", "beat")}  # noqa: SIM115
    celery = [sys.executable, "-m", "celery", "-A", "shop"]
    procs = {
        "web": subprocess.Popen(
            [
                sys.executable, "-m", "gunicorn", "shop.wsgi:application", "--bind", f"127.0.0.1:{args.port}",
                "--workers", "2", "--threads", "8", "--worker-class", "gthread", "--keep-alive", "30",
                "--graceful-timeout", "30",
            ],
            cwd=ROOT, env=env, stdout=logs["web"], stderr=subprocess.STDOUT,
        ),
        "worker": subprocess.Popen(
            [*celery, "worker", "--loglevel", "INFO", "--concurrency", "1", "--hostname", "resilience@%h"],
            cwd=ROOT, env=env, stdout=logs["worker"], stderr=subprocess.STDOUT,
        ),
        "beat": subprocess.Popen(
            [*celery, "beat", "--loglevel", "INFO", "--max-interval", "2", "--schedule", str(work / "beat")],
            cwd=ROOT, env=env, stdout=logs["beat"], stderr=subprocess.STDOUT,
        ),
    }  # fmt: skip
    tally = Tally()
    marks: dict[str, float] = {}
    try:
        _wait_http(args.port)
        start = time.monotonic()
        marks["start"] = time.time()
        stop = start + args.seconds
        threads = [
            threading.Thread(target=_client, args=(i, args.port, stop, shop, tally, args.seed))
            for i in range(args.clients)
        ]
        for t in threads:
            t.start()
        if args.restart_at:
            time.sleep(max(0.0, start + args.restart_at - time.monotonic()))
            marks["broker_down"] = time.time()
            embedded.stop_redis(work)
            time.sleep(args.outage)
            embedded.ensure_redis(work)
            marks["broker_up"] = time.time()
            print(f"broker restarted after {args.outage:.0f} s down", flush=True)
        for t in threads:
            t.join()
        marks["end"] = time.time()
        _stop(procs["web"])  # SIGTERM right after the burst, as a deployment stops a web server
        time.sleep(12)  # the worker has time for one more strategy run on the last rows
    finally:
        for name in ("web", "worker", "beat"):
            _stop(procs[name])
        for f in logs.values():
            f.close()
        embedded.stop_redis(work)
    print(json.dumps(report(tally, marks, work)), flush=True)


def report(tally: Tally, marks: dict, work: Path) -> dict:
    from datetime import datetime

    from django.db.models import Count, Sum
    from django.utils import timezone

    from adengine.models import AdEvent, Campaign, CampaignDay, Impression
    from adengine.serving import tokens

    nonces = set()
    for token in tally.view_tokens:
        nonces.add(tokens.read("view", token).nonce)
    logged = set(Impression.objects.filter(nonce__in=nonces).values_list("nonce", flat=True))
    twice = (
        AdEvent.objects.filter(status__in=AdEvent.COUNTED)
        .values("impression_id", "kind")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count()
    )
    billed_replays = AdEvent.objects.filter(status=AdEvent.Status.DUPLICATE, charge__gt=0).count()
    overspend, unbalanced = [], []
    for c in Campaign.objects.all():
        charged = AdEvent.objects.filter(campaign=c).aggregate(s=Sum("charge"))["s"] or 0
        if c.spent > c.total_budget:
            overspend.append(f"{c.name}: spent {c.spent} of {c.total_budget}")
        if abs(c.spent - charged) > 1e-6:
            unbalanced.append(f"{c.name}: spent {c.spent}, events charged {charged}")
        if c.daily_budget is not None:
            for day in CampaignDay.objects.filter(campaign=c, spent__gt=c.daily_budget):
                overspend.append(f"{c.name} on {day.day}: {day.spent} of {c.daily_budget}")
    worker_log = (work / "worker.log").read_text(errors="replace")
    runs = re.findall(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),\d+: INFO/\S+\] Task adengine\.update_strategy\[[^\]]+\] "
                      r"succeeded", worker_log, re.M)  # fmt: skip
    times = [datetime.strptime(t, "%Y-%m-%d %H:%M:%S").timestamp() for t in runs]
    server_errors = {f"{w} {s}": n for (w, s), n in sorted(tally.codes.items()) if s >= 500}
    spent_daily = [c for c in Campaign.objects.filter(daily_budget__isnull=False)]
    today = timezone.localdate()
    exhausted = sum(
        1
        for c in spent_daily
        if CampaignDay.objects.filter(campaign=c, day=today, spent__gte=c.daily_budget - c.bid).exists()
    )
    out = {
        "requests": {f"{w} {s}": n for (w, s), n in sorted(tally.codes.items())},
        "connection_errors": dict(tally.errors),
        "server_errors": server_errors,
        "pages_server_errors": sum(n for (w, s), n in tally.codes.items() if w.startswith("page:") and s >= 500),
        "impressions_seen_by_clients": len(nonces),
        "impressions_lost": len(nonces - logged),
        "impressions_logged_total": Impression.objects.count(),
        "clicks_counted": AdEvent.objects.filter(kind="click", status__in=AdEvent.COUNTED).count(),
        "replays": {str(k): v for k, v in tally.replays.items()},
        "clicks_billed_twice": twice + billed_replays,
        "overspend": overspend,
        "billing_unbalanced": unbalanced,
        "daily_budgets_spent": f"{exhausted} of {len(spent_daily)}",
        "strategy_runs": len(times),
        "strategy_runs_during_load": sum(marks["start"] <= t <= marks["end"] for t in times),
        "strategy_runs_after_broker_restart": sum(t >= marks.get("broker_up", marks["end"]) for t in times),
        "logs": str(work),
    }
    out["ok"] = (
        out["pages_server_errors"] == 0
        and out["impressions_lost"] == 0
        and out["clicks_billed_twice"] == 0
        and not overspend
        and not unbalanced
        and out["strategy_runs_during_load"] > 0
    )
    return out


if __name__ == "__main__":
    main()
