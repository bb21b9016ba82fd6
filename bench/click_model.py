"""The strategy job's click model at scale: load, fit and gate on 1,000,000 logged impressions.

Fills its own database (``adengine_bench_click`` on the server of ``DATABASE_URL``; ``--reuse`` keeps it) with
1,000,000 impressions over 2,000 campaigns and the four demo placements, served over the last 7 days, each with
the features serving logs (the asset's CTR, page fit, interest fit, page kind) and -- as serving does for every
sponsored slate -- its candidate set of 8 campaigns; clicks (as counted click events) drawn from a known
logistic model. Then times ``click_models.refit`` (read the log, fit on the training decisions, read the
held-out slates, evaluate candidate and live policy with SNIPW and DR, save) and reports each step, and how
close the fitted weights are to the true ones.

    python -m shop.embedded run -- .venv/bin/python bench/click_model.py [--reuse] [--impressions N]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BENCH_DB = "adengine_bench_click"
TRUE = {"asset": 0.8, "relevance": 0.6, "interest": 2.5, "page_fit": 1.0, "bias": -3.7, "position:2": -0.4}


def _setup() -> None:
    import psycopg

    url = os.environ["DATABASE_URL"]
    with psycopg.connect(url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [BENCH_DB]).fetchone():
            conn.execute(f"CREATE DATABASE {BENCH_DB}")
    os.environ["ADENGINE_BENCH_DATABASE_URL"] = re.sub(r"/[^/?]+(\?|$)", rf"/{BENCH_DB}\1", url, count=1)
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def populate(n: int) -> None:
    from decimal import Decimal

    from django.db import connection

    from adengine.models import Advertiser, Campaign, ClickModel, Creative, Placement, StrategyState

    t0 = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute("TRUNCATE adengine_adevent, adengine_impression, adengine_clickmodel CASCADE")
    ClickModel.objects.all().delete()
    StrategyState.objects.all().delete()
    placements = [
        Placement.objects.update_or_create(key=k, defaults={"name": k, "max_ads": 2})[0].pk
        for k in ("home-hero", "category-top", "product-sidebar", "search-top")
    ]
    advertiser, _ = Advertiser.objects.get_or_create(name="bench advertiser")
    if Creative.objects.count() < 2000:
        campaigns = Campaign.objects.bulk_create(
            [Campaign(advertiser=advertiser, name=f"c{i}", bid=Decimal("0.50"), total_budget=Decimal(10**6))
             for i in range(2000)]
        )  # fmt: skip
        Creative.objects.bulk_create(
            [Creative(campaign=c, asset_type="headline", language="en", text=f"headline {c.pk}", status="approved")
             for c in campaigns]
        )  # fmt: skip
    creative_of = dict(Creative.objects.values_list("campaign_id", "pk"))
    cids = np.array(sorted(creative_of))
    rng = np.random.default_rng(7)
    from adengine.serving import click_model as cm

    names = cm.feature_names(tuple(placements))
    w = np.zeros(len(names))
    for k, v in TRUE.items():
        w[names.index(k)] = v
    chunk = 100_000
    kinds = np.array(["home", "category", "product", "search"])
    written = 0
    import json
    import uuid

    while written < n:
        m = min(chunk, n - written)
        asset = rng.beta(2, 80, m)
        rel = rng.random(m)
        personalised = rng.random(m) < 0.6
        interest = np.where(personalised, rng.random(m), np.nan)
        page = rng.choice([0.0, 0.8, 0.9, 1.0], m)
        kind = rng.choice(kinds, m)
        position = rng.integers(0, 2, m)
        pl = rng.choice(placements, m)
        camp = rng.choice(cids, m)
        served = time.time() - rng.random(m) * 7 * 86400
        hours = (served % 86400) / 3600.0  # UTC hours (the demo shop's time zone is UTC)
        X = cm.design(tuple(placements), asset_ctr=asset, relevance=rel, interest=interest, page_fit=page,
                      personalised=personalised, kind=kind, position=position, other_language=np.zeros(m, bool),
                      hour=hours, placement_id=pl, base_ctr=0.02)  # fmt: skip
        clicked = rng.random(m) < cm.sigmoid(X @ w)
        rows = []
        for j in range(m):
            fit = None if np.isnan(interest[j]) else round(float(interest[j]), 3)
            ctx = {"page": str(kind[j]), "kind": str(kind[j]), "asset_ctr": round(float(asset[j]), 6),
                   "page_relevance": float(page[j]), "interest": fit, "house": False}  # fmt: skip
            if position[j] == 0:
                cand = rng.choice(cids, 8, replace=False)
                cand.sort()
                ctx["slate"] = {
                    "c": [creative_of[int(c)] for c in cand], "g": cand.tolist(),
                    "a": np.round(rng.gamma(2, 1, 8) + 1, 3).tolist(), "b": np.round(rng.gamma(50, 2, 8), 3).tolist(),
                    "v": [0.5] * 8, "r": np.round(rng.random(8), 4).tolist(),
                    "i": None if np.isnan(interest[j]) else np.round(rng.random(8), 4).tolist(),
                    "p": [float(page[j])] * 8, "e": 0.05, "n": 2,
                }  # fmt: skip
                camp[j] = cand[0]
            rows.append((str(uuid.uuid4()), str(uuid.uuid4()), int(pl[j]), int(camp[j]), creative_of[int(camp[j])],
                         "en", int(position[j]), 0.1, 0.02, float(rel[j]), 0.01, 8, bool(personalised[j]),
                         "contextual-v1", json.dumps(ctx), "/", served[j], bool(clicked[j])))  # fmt: skip
        with connection.cursor() as cur:
            with cur.copy(
                "COPY adengine_impression (nonce, decision_id, placement_id, campaign_id, creative_id, language, "
                "position, propensity, predicted_ctr, relevance, value, candidates, personalised, policy, context, "
                "landing_url, served_at) FROM STDIN"
            ) as copy:
                for r in rows:
                    copy.write_row([*r[:16], dt_of(r[16])])
            cur.execute(
                "INSERT INTO adengine_adevent (impression_id, impression_served_at, campaign_id, kind, status, charge, "
                "occurred_at, ip, user_agent) SELECT id, served_at, campaign_id, 'click', 'accepted', 0.5, served_at, "
                "'10.0.0.0', "
                "'bench' FROM adengine_impression WHERE nonce = ANY(%s::uuid[])",
                [[r[0] for r in rows if r[17]]],
            )
        written += m
        print(f"  {written:,} impressions written ({time.perf_counter() - t0:.0f} s)", flush=True)
    with connection.cursor() as cur:
        cur.execute("ANALYZE adengine_impression; ANALYZE adengine_adevent")


def dt_of(ts: float):
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, tz=dt.UTC)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reuse", action="store_true", help="Keep the impressions already written.")
    parser.add_argument("--impressions", type=int, default=1_000_000)
    args = parser.parse_args()
    _setup()
    from django.conf import settings
    from django.db import connection
    from django.test import override_settings

    from adengine.models import ClickModel, Impression, StrategyState
    from adengine.services import click_models
    from adengine.serving import click_model as cm

    if not (args.reuse and Impression.objects.count() >= args.impressions):
        populate(args.impressions)
    ClickModel.objects.all().delete()
    StrategyState.objects.all().delete()
    timings = {}
    original = {name: getattr(click_models, name) for name in ("load", "fit_candidate", "load_slates",
                                                                "evaluate_models")}  # fmt: skip

    def timed(name):
        def run(*a, **kw):
            t = time.perf_counter()
            try:
                return original[name](*a, **kw)
            finally:
                timings[name] = time.perf_counter() - t

        return run

    for name in original:
        setattr(click_models, name, timed(name))
    with override_settings(ADENGINE={**settings.ADENGINE, "CLICK_MODEL_MAX_IMPRESSIONS": args.impressions}):
        t0 = time.perf_counter()
        result = click_models.refit(force=True)
        total = time.perf_counter() - t0
    row = ClickModel.objects.first()
    names = cm.feature_names(tuple(row.placements))
    errors = {k: round(row.mean[names.index(k)] - v, 3) for k, v in TRUE.items() if k != "bias"}
    with connection.cursor() as cur:
        cur.execute("SELECT pg_size_pretty(pg_total_relation_size('adengine_impression'))")
        size = cur.fetchone()[0]
    print(f"impressions: {Impression.objects.count():,} ({size}); fitted on {row.impressions:,} with {row.clicks:,} "
          f"clicks; gate on {row.evaluation.get('records')} held-out impressions")  # fmt: skip
    for name, seconds in timings.items():
        print(f"  {name}: {seconds:.1f} s")
    print(f"refit total: {total:.1f} s -> {result['click_model']}")
    print(f"fitted minus true weights: {errors}")


if __name__ == "__main__":
    main()
