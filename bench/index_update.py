"""Candidate index updates at scale: the full build, and how long a change takes to reach a process's index.

Runs on bench/serving.py's data (10,000 active campaigns, 100,000 headline assets, 20,000 promoted products,
1,000,000 shoppers); fill it with that script first. Point ``--db`` at a copy (the changes are undone at the end,
but a copy keeps the shared one untouched):

    psql -c 'CREATE DATABASE my_bench TEMPLATE adengine_bench'
    python -m shop.embedded run -- .venv/bin/python bench/index_update.py --db my_bench

1. ``full``: ``builder.build()``, ``--rounds`` times.
2. ``changes``: for each kind of change (a campaign's bid, a campaign paused and resumed, an asset approved, a
   description added, a placement edited), committed the way another process commits it (no signal here):
   the check (``builder.fingerprint()``), the update (``builder.update``: digests, the changed campaigns re-read,
   the snapshot assembled), and the time from the commit until a process's ``IndexHolder`` with
   ``SERVING_INDEX_CHECK_SECONDS = --check`` serves it (the check interval's wait included); and the same change
   saved in this process (signals: applied at the next read). The last update is compared with a fresh full
   build, field by field.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _setup(db: str, check: float) -> None:
    url = os.environ["DATABASE_URL"]
    os.environ["ADENGINE_BENCH_DATABASE_URL"] = re.sub(r"/[^/?]+(\?|$)", rf"/{db}\1", url, count=1)
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    import django

    django.setup()
    from django.conf import settings
    from django.test import override_settings

    override_settings(ADENGINE={**settings.ADENGINE, "SERVING_INDEX_CHECK_SECONDS": check}).enable()


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def bench_full(rounds: int) -> dict:
    from adengine.serving import builder

    times = []
    snap = None
    for _ in range(rounds):
        t = time.perf_counter()
        snap = builder.build()
        times.append(time.perf_counter() - t)
    t = time.perf_counter()
    builder.fingerprint()
    check = time.perf_counter() - t
    out = {
        "campaigns": len(snap.campaigns),
        "assets": int(sum(len(a.creative_ids) for a in snap.arms.values())),
        "products": len(snap.cards),
        "full_build_s": [round(x, 2) for x in times],
        "full_build_median_s": round(statistics.median(times), 2),
        "fingerprint_ms": _ms(check),
    }
    print(f"full: {json.dumps(out)}", flush=True)
    return out


def _changes():
    """(name, apply(round) -> (campaign id, predicate on a snapshot), undo)"""
    from django.utils import timezone

    from adengine.models import Campaign, Creative, Placement
    from adengine.services.creatives import review

    campaigns = list(Campaign.objects.filter(status=Campaign.Status.ACTIVE).order_by("pk").values_list("pk", flat=True))
    bids = dict(Campaign.objects.filter(pk__in=campaigns[:100]).values_list("pk", "bid"))

    def bid(r):
        cid = campaigns[10 + r]
        Campaign.objects.filter(pk=cid).update(bid=Decimal("9.87"), updated_at=timezone.now())
        return lambda s: s.campaigns[s.index_of[cid]].bid == Decimal("9.87")

    def pause(r):
        cid = campaigns[20 + r]
        Campaign.objects.filter(pk=cid).update(status=Campaign.Status.PAUSED, updated_at=timezone.now())
        return lambda s: cid not in s.index_of

    def resume(r):
        cid = campaigns[20 + r]
        Campaign.objects.filter(pk=cid).update(status=Campaign.Status.ACTIVE, updated_at=timezone.now())
        return lambda s: cid in s.index_of

    def approve(r):
        cid = campaigns[30 + r]
        draft = Creative.objects.create(
            campaign_id=cid, asset_type="headline", language="en", text=f"Bench new headline {r}", status="draft",
            passes_rules=True, score=0.5,
        )  # fmt: skip
        review(creatives=Creative.objects.filter(pk=draft.pk), approve=True)
        return lambda s: draft.pk in s.arms["en"].creative_ids

    def describe(r):
        cid = campaigns[40 + r]
        Creative.objects.create(
            campaign_id=cid, asset_type="description", language="en", text=f"Bench description {r}",
            status="approved", passes_rules=True, score=0.5,
        )  # fmt: skip
        return lambda s: s.descriptions.get((s.index_of[cid], "en"), (0, ""))[1] == f"Bench description {r}"

    def placement(r):
        Placement.objects.filter(key="home-hero").update(max_ads=3 + r, updated_at=timezone.now())
        return lambda s: s.placements["home-hero"].max_ads == 3 + r

    def undo():
        for cid, value in bids.items():
            Campaign.objects.filter(pk=cid).update(bid=value)
        Campaign.objects.filter(pk__in=campaigns).update(status=Campaign.Status.ACTIVE)
        Creative.objects.filter(text__startswith="Bench new headline").delete()
        Creative.objects.filter(text__startswith="Bench description").delete()
        Placement.objects.filter(key="home-hero").update(max_ads=2)

    kinds = [("bid", bid), ("pause", pause), ("resume", resume), ("approve_asset", approve),
             ("add_description", describe), ("placement", placement)]  # fmt: skip
    return kinds, undo, campaigns


def bench_changes(rounds: int) -> dict:
    from django.db import connection

    from adengine.serving import get_backend
    from adengine.serving.index import IndexHolder

    kinds, undo, campaigns = _changes()
    holder = IndexHolder()
    holder.get()
    backend = get_backend()
    backend.reset()
    backend.snapshot()
    try:
        return _measure(kinds, campaigns, holder, backend, rounds)
    finally:
        undo()
        connection.close()


def _measure(kinds, campaigns, holder, backend, rounds: int) -> dict:
    from adengine.models import Campaign
    from adengine.services.bulk import bulk_writes
    from adengine.serving import builder

    results: dict[str, dict] = {}
    for name, apply in kinds:
        check, update, reach = [], [], []
        for r in range(rounds):
            base = holder.get()
            while holder.rebuilding:
                time.sleep(0.01)
            seen = apply(r)  # committed (autocommit): as another process's write
            committed = time.perf_counter()
            # what the process's background update does, timed alone on a copy of its starting point
            t = time.perf_counter()
            version = builder.fingerprint()
            t1 = time.perf_counter()
            fresh = builder.update(base, version)
            t2 = time.perf_counter()
            assert seen(fresh), f"{name}: the update missed the change"
            check.append(t1 - t)
            update.append(t2 - t1)
            # and end to end: the holder, polled as requests would, until it serves the change
            while not seen(holder.get()):
                time.sleep(0.005)
            reach.append(time.perf_counter() - committed)
        results[name] = {
            "check_ms": _ms(statistics.median(check)),
            "update_ms": _ms(statistics.median(update)),
            "update_max_ms": _ms(max(update)),
            "commit_to_served_ms": _ms(statistics.median(reach)),
            "commit_to_served_max_ms": _ms(max(reach)),
        }
        print(f"{name}: {json.dumps(results[name])}", flush=True)
    # the same kind of change saved in this process: signals name the campaign, the next read applies it
    inproc = []
    for r in range(rounds):
        backend.snapshot()
        c = Campaign.objects.get(pk=campaigns[60 + r])
        c.bid = Decimal("8.76")
        with bulk_writes():  # the signals that reach the index fire; no target refresh is enqueued
            c.save()
        t = time.perf_counter()
        snap = backend.snapshot()
        inproc.append(time.perf_counter() - t)
        assert snap.campaigns[snap.index_of[c.pk]].bid == Decimal("8.76")
    results["bid_saved_here"] = {"next_read_ms": _ms(statistics.median(inproc)), "max_ms": _ms(max(inproc))}
    print(f"bid_saved_here: {json.dumps(results['bid_saved_here'])}", flush=True)
    # the incrementally updated snapshot is the one a full build gives
    sys.path.insert(0, str(ROOT))
    from tests.serving.test_index_updates import assert_parts_same, assert_same

    last = holder.get()
    while holder.rebuilding:
        time.sleep(0.01)
    last = builder.update(holder.snapshot)
    full = builder.build()
    assert_same(last, full)
    assert_parts_same(last.parts, full.parts)
    results["same_as_full_build"] = True
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default="adengine_bench", help="the database on DATABASE_URL's server")
    parser.add_argument("--only", choices=["full", "changes"], action="append")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--check", type=float, default=1.0, help="SERVING_INDEX_CHECK_SECONDS for the holder")
    args = parser.parse_args()
    only = set(args.only or ["full", "changes"])
    _setup(args.db, args.check)
    load = os.getloadavg()
    results = {"load_before": [round(x, 2) for x in load]}
    if "full" in only:
        results["full"] = bench_full(args.rounds if args.rounds < 3 else 3)
    if "changes" in only:
        results["changes"] = bench_changes(args.rounds)
    results["load_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(results))


if __name__ == "__main__":
    main()
