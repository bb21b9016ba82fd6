"""CPU per decision request in process, against the bare DRF endpoint, and the cost of one slate draw.

Django's test client on ``adengine_bench`` (``bench/serving.py`` fills it): ``--requests`` decision requests
(home-hero, home page) spread over ``--sessions`` app sessions, then as many to the bare endpoint; process CPU per
request (the impression log's writer thread included). ``--slate``: ``_choose`` on the home page's kept slate,
drawn one slate per decision and from batches (``PreparedSlate.take``).

    python -m shop.embedded run -- .venv/bin/python bench/decision_cpu.py [--sessions 8] [--requests 3000] [--slate]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serving  # noqa: E402  (bench/serving.py: the bench database and its settings)


def requests(sessions: int, n: int) -> dict:
    from django.test import Client

    client = Client(HTTP_USER_AGENT="Mozilla/5.0 bench")
    run = int(time.time())
    paths = [f"/api/adengine/v1/decisions/?placement=home-hero&page=home&session=cpu{run}-{i}-abcdefgh"
             for i in range(sessions)]  # fmt: skip
    for i in range(300):  # warm: the index, the page's scores, the sessions' shoppers
        client.get(paths[i % sessions])
    started = time.process_time()
    for i in range(n):
        assert client.get(paths[(i + 300) % sessions]).status_code == 200
    decision = (time.process_time() - started) / n * 1000
    started = time.process_time()
    for _ in range(n):
        client.get("/bench/fixed/")
    bare = (time.process_time() - started) / n * 1000
    return {"sessions": sessions, "decision_cpu_ms": round(decision, 3), "bare_cpu_ms": round(bare, 3)}


def slate(calls: int = 5000) -> dict:
    from adengine.serving import PageContext, decide, engine, get_backend

    backend = get_backend()
    decide(placement_key="home-hero", shopper=None, context=PageContext(page="home"))
    page = next(iter(backend.pages.entries.values()))
    prepared = next(iter(page.slates.values()))
    out = {"arms": len(prepared.idx), "campaigns": len(set(prepared.group.tolist()))}
    kept = engine.SLATE_BATCH
    try:
        for batch in (1, kept):
            engine.SLATE_BATCH = batch
            prepared.batch, prepared.drawn = 1, []
            started = time.process_time()
            for _ in range(calls):
                engine._choose(prepared, n=1, epsilon=0.05)
            out[f"choose_ms_batch_{batch}"] = round((time.process_time() - started) / calls * 1000, 4)
    finally:
        engine.SLATE_BATCH = kept
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--slate", action="store_true", help="also time one slate draw, alone and from batches")
    args = parser.parse_args()
    serving._setup_django()
    from adengine.serving import get_backend

    get_backend().snapshot()
    print(requests(args.sessions, args.requests), flush=True)
    if args.slate:
        print(slate(), flush=True)


if __name__ == "__main__":
    main()
