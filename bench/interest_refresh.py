"""Interest refresh at scale: shoppers refreshed per second by a worker process, through the real chunk task.

Runs on a *copy* of ``adengine_bench`` (1,000,000 shoppers with interest vectors; built by bench/serving.py).
That copy has no behaviour (other benchmarks may leave a few events of their own), no product vectors and no interest
model, so the first run gives it, by SQL:

- a vector for each of its 20,000 products (random unit vectors: the refresh's cost does not depend on them);
- behaviour for ``--shoppers`` shoppers (``--events`` each over the last 30 days: views, carts, a purchase and
  a search whose text is one of about 27,000 three-word queries), which makes them stale;
- an active hybrid interest model with 32 ALS factors per product (random factors, their Gram matrix), so that
  every shopper is folded in as in production (training one on this synthetic behaviour would measure nothing).

Then it plans the refresh (``plan_refresh``: the coordinator's chunks) and runs chunks through the task itself
(``adengine.refresh_interest_chunk``, ``.apply()``: the code a Celery worker runs, without the broker), in rounds
that alternate one worker process and ``--workers`` processes side by side, each round on chunks not yet done:
shoppers per second per process and in all, and the projected time of a full refresh of 1,000,000 shoppers.
``--warm-queries`` first stores a vector for every search text (the warm state, once a full refresh's first chunks
have met its texts); without it the rounds are cold (the encoder runs for every text not stored yet).

    ADENGINE_BENCH_DATABASE_URL=postgresql://postgres:@/my_bench?host=/work/main/.data/pg DATABASE_URL=... \\
    CELERY_BROKER_URL=... flock /tmp/adengine-bench.lock .venv/bin/python bench/interest_refresh.py

``--end-to-end`` (with ``--shoppers 1000000``: a million stale shoppers, more than INTEREST_REBUILD_SHARE of those
with a vector, so the coordinator takes the bulk path) runs one full refresh through the
production path instead of the rounds. First, untimed: the tables the fill wrote are vacuumed and both shopper
vector indexes are built if absent (``build_vector_index``, the production state; each build timed). Then it
starts a real ``celery -A shop worker`` with ``--workers`` pool processes on the batch queue (``ENCODER["THREADS"]``
= ``--encoder-threads``, through bench/settings.py), sends the coordinator ``adengine.refresh_interests`` once
through the broker, and watches: the coordinator plans the chunks, drops both indexes (a bulk load) and queues the
chunks; the worker runs them, and ``adengine.build_interest_index`` builds the indexes again. It reports the time
from sending the coordinator to the last chunk finished and to both indexes valid again (``pg_index.indisvalid``),
shoppers per second in all and per pool process (from the worker's log), the builds' times and the load average.
The batch queue is purged before and after, so give the run a broker of its own (a Redis database of its own:
``CELERY_BROKER_URL=redis+socket:///path/redis.sock?virtual_host=7``). The search texts start cold unless
``--warm-queries``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MODEL_VERSION = "im-bench-synthetic"
WORDS = [
    "red", "blue", "black", "wool", "cotton", "linen", "running", "hiking", "kids", "organic", "bamboo", "steel",
    "leather", "waterproof", "wireless", "vintage", "shoes", "jacket", "phone case", "lamp", "desk", "tea",
    "coffee", "mug", "cutting board", "toy", "backpack", "headphones", "scarf", "kettle",
]  # fmt: skip


def _setup() -> None:
    from bench.serving import setup_copy

    setup_copy(doing="fill", copy_of="adengine_bench (CREATE DATABASE ... TEMPLATE ...)")


def fill(*, shoppers: int, events: int, seed: float) -> dict:
    """Product vectors, behaviour for the first ``shoppers`` shoppers and an active model, once (by SQL)."""
    import numpy as np
    from django.db import connection, transaction

    from adengine.ml.encoder import configured_version
    from adengine.ml.hybrid import MAX_FACTORS
    from adengine.models import InterestModel

    started = time.perf_counter()
    done = {}
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SELECT setseed(%s)", [seed])
        cur.execute("SELECT count(*) FROM adengine_productvector")
        if cur.fetchone()[0] == 0:
            # random unit vectors and 32 random factors (padded to MAX_FACTORS) per product
            cur.execute(
                """
                INSERT INTO adengine_productvector (product_id, embedding, model_version, text_hash, updated_at,
                    factors, hybrid_model, popularity)
                SELECT p.id, l2_normalize((SELECT array_agg(random() - 0.5 + 0 * p.id + 0 * k)
                                           FROM generate_series(1, 384) k)::vector), %s, '', now(),
                       (SELECT array_agg(CASE WHEN k <= 32 THEN (random() - 0.5) / 4 ELSE 0 END + 0 * p.id)
                        FROM generate_series(1, %s) k)::vector, %s, random()
                FROM shop_product p
                """,
                [configured_version()[1], MAX_FACTORS, MODEL_VERSION],
            )
            done["product_vectors"] = cur.rowcount
        # behaviour this script gave (source 'import'); other benchmarks leave a few events of their own on the copy
        cur.execute("SELECT count(*) FROM adengine_behaviourevent WHERE source = 'import'")
        if cur.fetchone()[0] == 0:
            cur.execute("SELECT min(id), max(id) FROM shop_product")
            lo, hi = cur.fetchone()
            # per shopper: a search, then views, carts and a purchase of products near each other in the catalog
            cur.execute(
                """
                INSERT INTO adengine_behaviourevent (kind, query, quantity, occurred_at, source, product_id,
                    shopper_id)
                SELECT CASE WHEN k = 1 THEN 'search' WHEN k = %(events)s THEN 'purchase'
                            WHEN k %% 4 = 0 THEN 'cart' ELSE 'view' END,
                       CASE WHEN k = 1 THEN (%(words)s::text[])[1 + (s.id * 7) %% cardinality(%(words)s::text[])]
                            || ' ' || (%(words)s::text[])[1 + floor(random() * cardinality(%(words)s::text[]))::int]
                            || ' ' || (%(words)s::text[])[1 + floor(random() * cardinality(%(words)s::text[]))::int]
                            ELSE '' END,
                       1, now() - (%(events)s - k) * interval '3 days' - random() * interval '2 days', 'import',
                       CASE WHEN k = 1 THEN NULL ELSE %(lo)s + ((s.id * 37 + floor(random() * 40)::int)
                                                                %% (%(hi)s - %(lo)s + 1)) END,
                       s.id
                FROM (SELECT id FROM adengine_shopper ORDER BY id LIMIT %(n)s) s, generate_series(1, %(events)s) k
                """,
                {"events": events, "words": WORDS, "lo": lo, "hi": hi, "n": shoppers},
            )
            done["events"] = cur.rowcount
            cur.execute(
                """
                UPDATE adengine_shopper s SET last_event_at = e.at, interest_source_at = NULL
                FROM (SELECT shopper_id, max(occurred_at) AS at FROM adengine_behaviourevent GROUP BY 1) e
                WHERE s.id = e.shopper_id
                """
            )
            done["stale_shoppers"] = cur.rowcount
    if not InterestModel.objects.filter(version=MODEL_VERSION).exists():
        from adengine.models import ProductVector

        rows = ProductVector.objects.values_list("embedding", "factors")
        content = np.array([np.asarray(e, np.float32) for e, _ in rows])
        factors = np.array([np.asarray(f, np.float32)[:32] for _, f in rows], np.float64)
        InterestModel.objects.filter(is_active=True).update(is_active=False)
        InterestModel.objects.create(
            version=MODEL_VERSION,
            is_active=True,
            weights={"content": 0.5, "collab": 0.3, "popularity": 0.2},
            params={
                "factors": 32,
                "regularization": 0.05,
                "alpha": 5.0,
                "iterations": 15,
                "half_life_days": 14.0,
                "method": "als",
                "session_hours": 0.0,
            },  # fmt: skip
            spread={"content": 1.0, "collab": 1.0, "popularity": 1.0},
            content_mean=[float(x) for x in content.mean(axis=0)],
            factor_scale=float(np.linalg.norm(factors, axis=1).max()),
            gram=(factors.T @ factors).tolist(),
            decision="synthetic model for bench/interest_refresh.py",
        )
        done["model"] = MODEL_VERSION
    with connection.cursor() as cur:
        cur.execute("ANALYZE adengine_behaviourevent, adengine_productvector, adengine_shopper")
    done["seconds"] = round(time.perf_counter() - started, 1)
    return done


def warm_queries() -> int:
    """Store a vector for every search text of the behaviour not stored yet (random unit vectors, by SQL), as the
    refresh finds them once the first chunks of a full refresh have encoded its ~26,000 distinct texts: the warm
    state. What a shopper's refresh costs then does not depend on the vectors' values."""
    from django.db import connection, transaction

    from adengine.ml.encoder import configured_version

    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(
            """
            INSERT INTO adengine_queryvector (encoder_version, query, embedding, created_at)
            SELECT %(v)s, q.query, l2_normalize((SELECT array_agg(random() - 0.5 + 0 * length(q.query) + 0 * k)
                                                 FROM generate_series(1, 384) k)::vector), now()
            FROM (SELECT DISTINCT query FROM adengine_behaviourevent WHERE kind = 'search' AND query <> '') q
            ON CONFLICT DO NOTHING
            """,
            {"v": configured_version()[1]},
        )
        return cur.rowcount


def _worker(chunk_ids: list[int], out: mp.Queue, threads: int | None, share: float | None = None) -> None:
    """One worker process: run its chunks through the task, report shoppers and seconds."""
    _setup()
    if share is not None:
        _share(share)
    if threads:  # ENCODER["THREADS"]: one torch thread per worker process when there is one process per core
        from django.conf import settings
        from django.test import override_settings

        encoder = {**settings.ADENGINE.get("ENCODER", {}), "THREADS": threads}
        override_settings(ADENGINE={**settings.ADENGINE, "ENCODER": encoder}).enable()
    from adengine.ml.encoder import get_encoder
    from adengine.models import InterestRefreshChunk
    from adengine.tasks import refresh_interest_chunk

    get_encoder().encode_queries(["warm up"])  # a worker loads the encoder once, before its first task
    # and reads the product vectors and factors once in its life (again only when they change): outside the timing,
    # reported as preload_s, since a full refresh spreads it over hundreds of chunks
    from adengine.models import ProductVector
    from adengine.services import interest_model, interests

    t = time.perf_counter()
    products = list(ProductVector.objects.values_list("product_id", flat=True))
    interests.product_vectors(products)
    if (model := interest_model.active_model()) is not None:
        interest_model.product_factors(set(products), model=model)
    preload = time.perf_counter() - t
    t = time.perf_counter()
    for chunk_id in chunk_ids:
        refresh_interest_chunk.apply(kwargs={"chunk_id": chunk_id}).get()
    seconds = time.perf_counter() - t
    chunks = InterestRefreshChunk.objects.filter(pk__in=chunk_ids)
    out.put({"shoppers": sum(c.refreshed + c.cleared for c in chunks), "seconds": seconds, "preload": preload,
             "finished": sum(c.finished_at is not None for c in chunks)})  # fmt: skip


def _share(share: float) -> None:
    """INTEREST_REBUILD_SHARE for this process (--rebuild-share)."""
    from django.conf import settings
    from django.test import override_settings

    override_settings(ADENGINE={**settings.ADENGINE, "INTEREST_REBUILD_SHARE": share}).enable()


def _table_stats() -> dict:
    """Updates of the shopper table so far, and how many of them were in place (HOT: no index entry)."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT pg_stat_clear_snapshot()")
        cur.execute("SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'adengine_shopper'")
        upd, hot = cur.fetchone()
    return {"updated": upd, "hot": hot}


def run_round(chunks: list[int], processes: int, threads: int | None = None, share: float | None = None) -> dict:
    """Run ``chunks`` split over ``processes`` worker processes at once; shoppers, wall seconds, per process."""
    out: mp.Queue = mp.get_context("spawn").Queue()
    ctx = mp.get_context("spawn")
    parts = [chunks[i::processes] for i in range(processes)]
    t = time.perf_counter()
    procs = [ctx.Process(target=_worker, args=(part, out, threads, share)) for part in parts]
    for p in procs:
        p.start()
    reports = [out.get() for _ in procs]
    for p in procs:
        p.join()
    wall = time.perf_counter() - t
    time.sleep(1.0)  # the workers' statistics reach pg_stat_user_tables as they exit
    shoppers = sum(r["shoppers"] for r in reports)
    busy = max(r["seconds"] for r in reports)  # from the first task to the last (encoder loaded before)
    return {
        "processes": processes,
        "chunks": len(chunks),
        "shoppers": shoppers,
        "seconds": round(busy, 1),
        "wall_with_start_s": round(wall, 1),
        "per_second": round(shoppers / busy, 1),
        "per_second_per_process": round(shoppers / busy / processes, 1),
        "finished": sum(r["finished"] for r in reports),
        "preload_s": round(max(r["preload"] for r in reports), 1),
        "table": _table_stats(),
    }


def prepare_indexes() -> dict:
    """The production state before a full refresh (--end-to-end, not part of its time): the tables the fill wrote
    vacuumed and analysed, and both shopper vector indexes valid as the model defines them, built through
    ``build_vector_index`` (the code ``adengine.build_interest_index`` runs) when missing or invalid, timed."""
    from django.db import connection

    from adengine.services import interest_indexes

    t = time.perf_counter()
    with connection.cursor() as cur:
        for table in ("adengine_shopper", "adengine_behaviourevent"):
            cur.execute(f"VACUUM (ANALYZE) {table}")
    out: dict = {"vacuum_s": round(time.perf_counter() - t, 1), "before": interest_indexes.index_states(), "built": []}
    while (built := interest_indexes.build_vector_index()) is not None:
        out["built"].append({**built, "load": [round(x, 2) for x in os.getloadavg()]})
    out["after"] = interest_indexes.index_states()
    out["definitions"] = _index_definitions()
    return out


def _index_definitions() -> dict:
    from django.db import connection

    from adengine.services import interest_indexes

    with connection.cursor() as cur:
        cur.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'adengine_shopper' AND indexname = ANY(%s)",
            [[ix.name for ix in interest_indexes.vector_indexes()]],
        )
        return dict(cur.fetchall())


def _utc() -> str:
    import datetime as dt

    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


_TASK_LINE = (
    r"^\[(?P<at>[\d\- :,]+): \w+/(?P<process>[\w\-]+)\] Task (?P<task>adengine\.\w+)\[[\w\-]+\] "
    r"(?P<outcome>succeeded|retry|raised)[^:]*?(?: in (?P<seconds>[\d.e\-]+)s)?: (?P<result>.*)$"
)


def _worker_log(path: Path) -> dict:
    """What the worker's log says about each task: per pool process, the chunks it ran, their shoppers and the
    seconds they took (Celery's "succeeded in" lines); the coordinator's and the index builds' results."""
    import ast
    import re

    per_process: dict = {}
    tasks: dict = {"coordinator": [], "builds": [], "builds_with_nothing_to_do": 0, "retries": 0, "failures": 0}
    for line in path.read_text(errors="replace").splitlines():
        m = re.match(_TASK_LINE, line)
        if not m:
            continue
        if m["outcome"] != "succeeded":
            tasks["retries" if m["outcome"] == "retry" else "failures"] += 1
            continue
        try:
            result = ast.literal_eval(m["result"])
        except (ValueError, SyntaxError):
            result = m["result"]
        seconds = float(m["seconds"])
        if m["task"] == "adengine.refresh_interest_chunk":
            mine = per_process.setdefault(m["process"], {"chunks": 0, "shoppers": 0, "busy_s": 0.0, "skipped": 0})
            if isinstance(result, dict) and "skipped" not in result:
                mine["chunks"] += 1
                mine["shoppers"] += result["refreshed"] + result["cleared"]
            else:
                mine["skipped"] += 1
            mine["busy_s"] += seconds
        elif m["task"] == "adengine.refresh_interests":
            tasks["coordinator"].append({"at": m["at"], "process": m["process"], "seconds": round(seconds, 1),
                                         "result": result})  # fmt: skip
        elif m["task"] == "adengine.build_interest_index" and result is None:
            # each chunk after the last bulk one queues a build; those that find one running (or none due) return
            tasks["builds_with_nothing_to_do"] += 1
        elif m["task"] == "adengine.build_interest_index":
            tasks["builds"].append({"at": m["at"], "process": m["process"], "seconds": round(seconds, 1),
                                    "result": result})  # fmt: skip
    for mine in per_process.values():
        mine["busy_s"] = round(mine["busy_s"], 1)
        mine["per_second_busy"] = round(mine["shoppers"] / mine["busy_s"], 1) if mine["busy_s"] else None
    return {"per_process": per_process, **tasks}


def _queue_length(app, queue: str) -> int:
    with app.connection_for_write() as conn:
        return conn.default_channel.client.llen(queue)


def _purge(app, queue: str) -> int:
    with app.connection_for_write() as conn:
        return conn.default_channel.queue_purge(queue) or 0


def end_to_end(*, workers: int, threads: int, poll: float, log_path: Path, max_seconds: float | None) -> dict:
    """A full refresh through the production path: a real ``celery -A shop worker`` with ``workers`` pool processes
    on the batch queue; the coordinator ``adengine.refresh_interests`` sent through the broker once; then the
    chunks and ``adengine.build_interest_index`` as the worker runs them, until every chunk is finished and both
    vector indexes are valid again (pg_index.indisvalid) and the batch queue is empty. Times from sending the
    coordinator; per pool process from the worker's log."""
    import signal
    import subprocess

    from django.db.models import Count, Max, Min, Q, Sum
    from django.utils import timezone

    from adengine.models import InterestRefreshChunk
    from adengine.queues import queue_for
    from adengine.services import interest_indexes
    from adengine.tasks import refresh_interests
    from shop.celery import app

    queue = queue_for("adengine.refresh_interest_chunk") or app.conf.task_default_queue
    InterestRefreshChunk.objects.filter(finished_at__isnull=True).delete()  # plans of earlier runs
    purged = _purge(app, queue)
    hostname = f"bench-refresh-{os.getpid()}@%h"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.settings", "ADENGINE_BENCH_ENCODER_THREADS": str(threads)}
    command = [sys.executable, "-m", "celery", "-A", "shop", "worker", "--loglevel", "INFO", "--pool", "prefork",
               "--concurrency", str(workers), "--queues", queue, "--hostname", hostname]  # fmt: skip
    print(f"worker: {' '.join(command)} (log {log_path}; {purged} messages purged from {queue})", flush=True)
    log = log_path.open("w")
    worker = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(240):  # the worker is up before the refresh starts, as in production
            if " ready." in log_path.read_text(errors="replace"):
                break
            if worker.poll() is not None:
                raise RuntimeError(f"the worker exited ({worker.returncode}); see {log_path}")
            time.sleep(0.5)
        else:
            raise RuntimeError(f"the worker did not start; see {log_path}")
        before = _table_stats()
        states = interest_indexes.index_states()
        out: dict = {"queue": queue, "workers": workers, "encoder_threads": threads, "indexes_at_start": states}
        out["start_utc"], out["load_start"] = _utc(), [round(x, 2) for x in os.getloadavg()]
        started_at = timezone.now()
        t0 = time.perf_counter()
        refresh_interests.apply_async()  # beat's job: the coordinator, once, through the broker
        chunks = InterestRefreshChunk.objects.filter(queued_at__gte=started_at)
        down: set = set()  # indexes seen dropped (missing or invalid) since the start
        valid_at: dict = {}
        chunks_done_s = None
        loads, last_print, finished = [], 0.0, False
        while True:
            try:
                time.sleep(poll)
            except KeyboardInterrupt:  # Ctrl-C (SIGINT): stop the worker and report what was done so far
                print("interrupted", flush=True)
                break
            elapsed = time.perf_counter() - t0
            states = interest_indexes.index_states()
            down |= {name for name, state in states.items() if state != "valid"}
            for name in down:
                if states[name] == "valid" and name not in valid_at:
                    valid_at[name] = round(elapsed, 1)
                    print(f"{_utc()} {elapsed:7.1f} s: index {name} valid", flush=True)
            agg = chunks.aggregate(n=Count("pk"), done=Count("finished_at"), planned=Sum("planned"))
            loads.append(os.getloadavg()[0])
            if chunks_done_s is None and agg["n"] and agg["done"] == agg["n"]:
                chunks_done_s = round(elapsed, 1)
                out["load_chunks_done"] = [round(x, 2) for x in os.getloadavg()]
                print(f"{_utc()} {elapsed:7.1f} s: all {agg['n']} chunks finished", flush=True)
            if elapsed - last_print >= 60:
                last_print = elapsed
                print(f"{_utc()} {elapsed:7.1f} s: chunks {agg['done']}/{agg['n']} ({agg['planned']} shoppers), "
                      f"indexes {states}, queue {_queue_length(app, queue)}, load {os.getloadavg()[0]:.2f}",
                      flush=True)  # fmt: skip
            # done: every chunk finished, both indexes valid (built again if the coordinator dropped them: `down`)
            if (
                chunks_done_s is not None
                and all(state == "valid" for state in states.values())
                and _queue_length(app, queue) == 0
            ):
                finished = True
                break
            if worker.poll() is not None:
                print(f"the worker exited ({worker.returncode})", flush=True)
                break
            if max_seconds is not None and elapsed > max_seconds:
                print(f"stopped after {elapsed:.1f} s (--max-seconds)", flush=True)
                break
        total = time.perf_counter() - t0
        out["end_utc"], out["load_end"] = _utc(), [round(x, 2) for x in os.getloadavg()]
        out["finished"] = finished
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)  # warm shutdown: a task still running finishes
            try:
                worker.wait(timeout=600)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        log.close()
        _purge(app, queue)
    agg = chunks.aggregate(
        n=Count("pk"),
        done=Count("finished_at"),
        planned=Sum("planned"),
        refreshed=Sum("refreshed"),
        cleared=Sum("cleared"),
        first_started=Min("started_at"),
        last_finished=Max("finished_at"),
        retried=Count("pk", filter=Q(attempts__gt=1)),
    )
    shoppers = (agg["refreshed"] or 0) + (agg["cleared"] or 0)
    chunk_phase = (agg["last_finished"] - started_at).total_seconds() if agg["last_finished"] else None
    out.update(
        {
            "chunks": agg["n"],
            "chunks_finished": agg["done"],
            "chunks_attempted_more_than_once": agg["retried"],
            "shoppers_planned": agg["planned"],
            "shoppers": shoppers,
            "first_chunk_started_s": round((agg["first_started"] - started_at).total_seconds(), 1)
            if agg["first_started"]
            else None,
            "chunk_phase_s": round(chunk_phase, 1) if chunk_phase else None,
            "chunks_done_seen_s": chunks_done_s,
            "indexes_dropped": sorted(down),
            "indexes_valid_s": valid_at,
            "total_s": round(total, 1),
            "per_second_chunk_phase": round(shoppers / chunk_phase, 1) if chunk_phase else None,
            "per_second_per_process_chunk_phase": round(shoppers / chunk_phase / workers, 1) if chunk_phase else None,
            "per_second_total": round(shoppers / total, 1),
            "load_max_1min": round(max(loads, default=0.0), 2),
            "indexes_at_end": interest_indexes.index_states(),
            "definitions_at_end": _index_definitions(),
            "table": {k: v - before[k] for k, v in _table_stats().items()},
            "worker_log": _worker_log(log_path),
        }
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shoppers", type=int, default=100_000, help="shoppers given behaviour (first run)")
    parser.add_argument("--events", type=int, default=10, help="events per shopper (first run)")
    parser.add_argument("--chunk-size", type=int, default=2000)
    parser.add_argument("--chunks", type=int, default=4, help="chunks per worker process per round")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2, help="pairs of rounds (1 process, then --workers)")
    parser.add_argument("--seed", type=float, default=0.3)
    parser.add_argument("--full", type=int, default=1_000_000, help="shoppers of the projected full refresh")
    parser.add_argument("--encoder-threads", type=int, default=1, help="ENCODER THREADS of each worker process")
    parser.add_argument("--fill-only", action="store_true", help="prepare the copy and stop (needs no lock)")
    parser.add_argument(
        "--warm-queries",
        action="store_true",
        help="first store a vector for every search text (the state after the first chunks of a full refresh)",
    )
    parser.add_argument(
        "--rebuild-share",
        type=float,
        default=None,
        help="INTEREST_REBUILD_SHARE for this run (the copy gives behaviour to 10 %% of its shoppers, so a full "
        "refresh's bulk path needs a share below that); the plan then drops the indexes as the coordinator does",
    )
    parser.add_argument(
        "--again",
        action="store_true",
        help="then make the shoppers just refreshed stale again, with the same behaviour, and refresh them again "
        "(vectors that come out unchanged: how many row updates stay off the indexes)",
    )
    parser.add_argument(
        "--end-to-end",
        action="store_true",
        help="a full refresh through the production path: the indexes built first if absent (not timed as the "
        "refresh), then a real Celery worker with --workers pool processes on the batch queue, the coordinator sent "
        "once, timed until every chunk is done and both indexes are valid again (give --shoppers 1000000)",
    )
    parser.add_argument("--poll", type=float, default=2.0, help="--end-to-end: seconds between looks at the state")
    parser.add_argument("--max-seconds", type=float, default=None, help="--end-to-end: stop the worker after this")
    parser.add_argument("--worker-log", type=Path, default=Path("/tmp/interest-refresh-worker.log"))
    args = parser.parse_args()
    _setup()
    if args.rebuild_share is not None:
        _share(args.rebuild_share)
    from django.conf import settings
    from django.db import connection

    from adengine.models import InterestRefreshChunk
    from adengine.services import interest_indexes
    from adengine.services.interests import plan_refresh

    print(f"fill: {fill(shoppers=args.shoppers, events=args.events, seed=args.seed)}", flush=True)
    if args.fill_only:
        return
    if args.end_to_end and args.warm_queries:
        print(f"warm: {warm_queries()} search texts stored", flush=True)
    if args.end_to_end:
        print(f"prepare: {json.dumps(prepare_indexes())}", flush=True)
        connection.close()
        result = end_to_end(workers=args.workers, threads=args.encoder_threads, poll=args.poll,
                            log_path=args.worker_log, max_seconds=args.max_seconds)  # fmt: skip
        print(json.dumps(result, default=str))
        return
    from adengine.models import QueryVector

    if args.warm_queries:
        print(f"warm: {warm_queries()} search texts stored", flush=True)
    print(f"search texts already encoded: {QueryVector.objects.count()}", flush=True)
    InterestRefreshChunk.objects.filter(finished_at__isnull=True).delete()  # plans of earlier runs
    planned = plan_refresh(chunk_size=args.chunk_size)
    print(f"planned {len(planned)} chunks of {args.chunk_size} on {settings.DATABASES['default']['NAME']} "
          f"(method {settings.ADENGINE.get('INTEREST_METHOD', 'mean')})", flush=True)  # fmt: skip
    # what the coordinator (adengine.refresh_interests) does next: a bulk load drops the vector indexes
    open_shoppers, indexed = interest_indexes.open_refresh_shoppers(), interest_indexes.indexed_shoppers()
    bulk = interest_indexes.bulk_load_due(open_shoppers, indexed=indexed)
    t = time.perf_counter()
    dropped = interest_indexes.drop_vector_indexes() if bulk else []
    print(json.dumps({"stale": open_shoppers, "with_vectors": indexed, "bulk": bulk, "dropped": dropped,
                      "drop_s": round(time.perf_counter() - t, 2), "indexes": interest_indexes.index_states()}),
          flush=True)  # fmt: skip
    connection.close()  # the worker processes open their own
    rounds, queue, done = [], list(planned), []
    for _ in range(args.rounds):
        for processes in (1, args.workers):
            take = args.chunks * processes
            if len(queue) < take:
                break
            chunks, queue = queue[:take], queue[take:]
            before = _table_stats()
            r = run_round(chunks, processes, args.encoder_threads, args.rebuild_share)
            r["table"] = {k: v - before[k] for k, v in r["table"].items()}
            r["load"] = [round(x, 2) for x in os.getloadavg()]
            rounds.append(r)
            done.append(chunks)
            print(json.dumps(r), flush=True)
    if args.again:
        # the same shoppers, the same behaviour: stale again, their chunks reopened, refreshed again
        for chunks in done:
            for c in InterestRefreshChunk.objects.filter(pk__in=chunks):
                from adengine.models import Shopper

                Shopper.objects.filter(
                    pk__gte=c.first_shopper, pk__lte=c.last_shopper, interest_vector__isnull=False
                ).update(interest_source_at=None)
            InterestRefreshChunk.objects.filter(pk__in=chunks).update(finished_at=None)
        connection.close()
        for chunks, first in zip(done, rounds[: len(done)], strict=True):
            before = _table_stats()
            r = run_round(chunks, first["processes"], args.encoder_threads, args.rebuild_share)
            r["table"] = {k: v - before[k] for k, v in r["table"].items()}
            r["load"] = [round(x, 2) for x in os.getloadavg()]
            r["again"] = True
            print(json.dumps(r), flush=True)
    summary = {}
    for processes in sorted({r["processes"] for r in rounds}):
        mine = [r for r in rounds if r["processes"] == processes]
        rate = sum(r["shoppers"] for r in mine) / sum(r["seconds"] for r in mine)
        summary[processes] = {
            "per_second": round(rate, 1),
            "per_second_per_process": round(rate / processes, 1),
            "full_refresh_hours": round(args.full / rate / 3600, 2),
        }
    print(json.dumps({"rounds": rounds, "summary": summary, "full": args.full}))


if __name__ == "__main__":
    main()
