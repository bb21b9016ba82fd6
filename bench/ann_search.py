"""Nearest-neighbour search on pgvector: recall@10 against exact search, p50 / p99 latency, index build time and size.

Stores N unit 384-d vectors in a scratch table shaped like adengine's ``adengine_shopper.interest_vector``, then for
each index variant builds the HNSW index (timed), and times ``LIMIT 10`` queries for several ``hnsw.ef_search`` values
against exact (sequential) search on the same queries. Variants (``--variant``, repeatable):

- ``vector:M:EFC``: the index on the column itself, ``vector_cosine_ops`` (adengine before 0020: ``vector:16:64``);
- ``halfvec:M:EFC``: an expression index on ``(v::halfvec(384)) halfvec_cosine_ops`` (half the size); each ef_search is
  timed plain (the index's half-precision order) and, for each ``--rerank C`` (C <= ef_search), fetching C candidates
  from the index and re-ranking them by the full-precision distance (what adengine does since 0020).

Data: ``--data shoppers`` (default) makes vectors the way adengine makes interest vectors --
weighted mixes of 1-4 of the demo catalog's real product embeddings plus noise -- so it needs the
demo data embedded; ``--data topics`` is a harder isotropic case (500 random topics, wide noise).
``--prepare`` loads the table and stores the exact answers (not timed); run it first without the benchmark lock, then
each timed run with ``--reuse`` under ``flock /tmp/adengine-bench.lock``:

    python -m shop.embedded run -- .venv/bin/python bench/ann_search.py --n 1000000 --prepare
    python -m shop.embedded run -- flock /tmp/adengine-bench.lock .venv/bin/python bench/ann_search.py --n 1000000 \
        --reuse --variant halfvec:16:128 --ef 40 --ef 80 --ef 120 --rerank 20 --rerank 40

``DATABASE_URL`` names the database (any scratch database with the vector extension and, for ``--data shoppers``,
``adengine_productvector`` rows).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from dataclasses import dataclass

import numpy as np
import psycopg
from pgvector.psycopg import register_vector

DIM = 384


def topics(n: int, rng: np.random.Generator, centres: np.ndarray) -> np.ndarray:
    """A harder, isotropic case: 500 random topics with wide noise (high intrinsic dimension)."""
    # noise of 0.07 per dimension puts a point at cosine ~0.6 from its topic's centre: topics overlap,
    # and the 10 nearest neighbours are not simply "the same topic" (which would make recall trivial)
    idx = rng.integers(0, len(centres), n)
    v = centres[idx] + rng.normal(0, 0.07, (n, DIM)).astype(np.float32)
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def shopper_like(n: int, rng: np.random.Generator, anchors: np.ndarray) -> np.ndarray:
    """Vectors made the way adengine makes interest vectors: recency-weighted mixes of 1-4 real product
    vectors (the demo catalog's e5 embeddings), plus a little noise for the text part."""
    k = rng.integers(1, 5, n)
    out = np.zeros((n, DIM), dtype=np.float32)
    for j in range(4):
        pick = anchors[rng.integers(0, len(anchors), n)]
        w = rng.gamma(1.0, 1.0, n).astype(np.float32) * (j < k)
        out += pick * w[:, None]
    out += rng.normal(0, 0.01, (n, DIM)).astype(np.float32)
    return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


@dataclass(frozen=True)
class Variant:
    kind: str  # "vector" or "halfvec"
    m: int
    ef_construction: int

    @classmethod
    def parse(cls, text: str) -> Variant:
        kind, m, efc = text.split(":")
        if kind not in ("vector", "halfvec"):
            raise SystemExit(f"--variant {text}: the kind is vector or halfvec")
        return cls(kind, int(m), int(efc))

    @property
    def name(self) -> str:
        return f"bench_vectors_{self.kind}_m{self.m}_efc{self.ef_construction}"

    @property
    def expression(self) -> str:
        return "v" if self.kind == "vector" else f"(v::halfvec({DIM}))"

    @property
    def opclass(self) -> str:
        return f"{self.kind}_cosine_ops"

    def query(self, rerank: int = 0) -> str:
        """The timed query: the index's top 10, or the top 10 of ``rerank`` index candidates by the exact distance."""
        if self.kind == "vector":
            return "SELECT id FROM bench_vectors ORDER BY v <=> %(q)s LIMIT 10"
        order = f"ORDER BY {self.expression} <=> %(q)s::halfvec({DIM})"
        if not rerank:
            return f"SELECT id FROM bench_vectors {order} LIMIT 10"
        # the shape of adengine's query (selectors/audience.py): the index scan in a subquery, the exact order outside
        return (
            f"SELECT id FROM bench_vectors WHERE id IN (SELECT id FROM bench_vectors {order} LIMIT {rerank}) "
            "ORDER BY v <=> %(q)s LIMIT 10"
        )


def generator(conn, data: str, rng: np.random.Generator):
    """The vector generator for ``data`` and the centres it draws from."""
    if data == "shoppers":
        anchors = np.stack(
            [
                np.asarray(v.to_numpy() if hasattr(v, "to_numpy") else v, np.float32)
                for (v,) in conn.execute("SELECT embedding FROM adengine_productvector").fetchall()
            ]
        )
        if len(anchors) < 50:
            raise SystemExit("load the demo data and embed the catalog first (make demo)")

        def clustered(m, rng, _centres):
            return shopper_like(m, rng, anchors)

        return clustered, anchors
    centres = rng.normal(size=(500, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    return topics, centres


def load(conn, n: int, seed: int, reuse: bool, data: str) -> tuple[np.ndarray, bool]:
    """The table of ``n`` vectors (made, or reused from a run with the same size) and the query vectors."""
    rng = np.random.default_rng(seed)
    clustered, centres = generator(conn, data, rng)
    exists = conn.execute("SELECT to_regclass('bench_vectors') IS NOT NULL").fetchone()[0]
    if reuse and exists and conn.execute("SELECT count(*) FROM bench_vectors").fetchone()[0] == n:
        done = 0
        while done < n:  # replay the generator so the queries are the same as after a fresh load
            done += len(clustered(min(50_000, n - done), rng, centres))
        print(f"n={n}: reusing the table loaded before", flush=True)
        return clustered(200, rng, centres), True
    conn.execute("DROP TABLE IF EXISTS bench_vectors")
    conn.execute("DROP TABLE IF EXISTS bench_truth")
    conn.execute(f"CREATE UNLOGGED TABLE bench_vectors (id bigint PRIMARY KEY, v vector({DIM}))")
    t = time.perf_counter()
    with conn.cursor().copy("COPY bench_vectors (id, v) FROM STDIN WITH (FORMAT BINARY)") as copy:
        copy.set_types(["int8", "vector"])
        done = 0
        while done < n:
            chunk = clustered(min(50_000, n - done), rng, centres)
            for i, vec in enumerate(chunk):
                copy.write_row((done + i, vec))
            done += len(chunk)
    conn.execute("VACUUM ANALYZE bench_vectors")
    print(f"n={n}: loaded in {time.perf_counter() - t:.0f} s", flush=True)
    return clustered(200, rng, centres), False


def exact_answers(conn, qs: np.ndarray, data: str, seed: int) -> list[set[int]]:
    """The exact 10 nearest of each query (a sequential scan), stored so that later runs reuse them."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS bench_truth (data text, seed int, q int, ids bigint[], PRIMARY KEY (data, seed, q))"
    )
    stored = dict(conn.execute("SELECT q, ids FROM bench_truth WHERE data = %s AND seed = %s", [data, seed]).fetchall())
    if len(stored) >= len(qs):
        return [set(stored[i]) for i in range(len(qs))]
    conn.execute("SET enable_indexscan = off")
    t = time.perf_counter()
    out = []
    for i, q in enumerate(qs):
        ids = [r[0] for r in conn.execute("SELECT id FROM bench_vectors ORDER BY v <=> %s LIMIT 10", [q]).fetchall()]
        conn.execute("INSERT INTO bench_truth VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING", [data, seed, i, ids])
        out.append(set(ids))
    conn.execute("RESET enable_indexscan")
    print(f"exact answers of {len(qs)} queries in {time.perf_counter() - t:.0f} s", flush=True)
    return out


def build_index(conn, variant: Variant, reuse: bool, memory: str) -> dict:
    """Build the variant's index (timed), or reuse it; its build time, size and pgvector's notices."""
    exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", [variant.name]).fetchone()[0]
    notices: list[str] = []
    seconds = None
    if not (reuse and exists):
        conn.execute(f"DROP INDEX IF EXISTS {variant.name}")
        conn.execute(f"SET maintenance_work_mem = '{memory}'")
        conn.execute("SET max_parallel_maintenance_workers = 2")
        conn.add_notice_handler(lambda d: notices.append(d.message_primary))
        t = time.perf_counter()
        conn.execute(
            f"CREATE INDEX {variant.name} ON bench_vectors USING hnsw ({variant.expression} {variant.opclass}) "
            f"WITH (m = {variant.m}, ef_construction = {variant.ef_construction})"
        )
        seconds = time.perf_counter() - t
        conn.execute("ANALYZE bench_vectors")
    size = conn.execute("SELECT pg_relation_size(%s)", [variant.name]).fetchone()[0]
    built = f"built in {seconds:.0f} s" if seconds is not None else "reused"
    print(f"{variant.name}: {built}, {size / 2**20:.0f} MiB {' '.join(notices)}", flush=True)
    return {"build_s": seconds, "size_mib": round(size / 2**20), "notices": notices}


def measure(conn, variant: Variant, qs, exact, ef: int, rerank: int, rounds: int) -> dict:
    """recall@10 and latency of the variant's query at one ef_search (``rerank`` candidates, 0 for none)."""
    sql = variant.query(rerank)
    conn.execute(f"SET hnsw.ef_search = {ef}")
    plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + sql, {"q": qs[0]}).fetchall())
    assert variant.name in plan, f"the index {variant.name} is not used:\n{plan}"
    for q in qs:  # warm the index pages for this ef_search
        conn.execute(sql, {"q": q}).fetchall()
    lat, recall = [], []
    for _ in range(rounds):
        for q, truth in zip(qs, exact, strict=True):
            t = time.perf_counter()
            got = {r[0] for r in conn.execute(sql, {"q": q}).fetchall()}
            lat.append((time.perf_counter() - t) * 1000)
            recall.append(len(got & truth) / 10)
    lat.sort()
    row = {
        "ef_search": ef,
        "rerank": rerank,
        "recall10": round(statistics.mean(recall), 4),
        "p50_ms": round(lat[len(lat) // 2], 2),
        "p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 2),
    }
    how = f"re-rank {rerank:>3}" if rerank else "index order"
    print(
        f"  {variant.kind} ef_search={ef:>4} {how}: recall@10 {row['recall10']:.3f}  p50 {row['p50_ms']:.2f} ms  "
        f"p99 {row['p99_ms']:.2f} ms",
        flush=True,
    )
    return row


def run(args, n: int) -> dict:
    url = os.environ["DATABASE_URL"]
    # prepare_threshold=None: no server-side prepared statements, whose cached plan from the exact
    # (index scans off) phase would otherwise be reused and time a sequential scan
    with psycopg.connect(url, autocommit=True, prepare_threshold=None) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        register_vector(conn)
        qs, _ = load(conn, n, args.seed, args.reuse, args.data)
        qs = qs[: args.queries]
        exact = exact_answers(conn, qs, args.data, args.seed)
        out = {"n": n, "data": args.data, "queries": len(qs), "load": os.getloadavg(), "variants": []}
        if args.prepare:
            return out
        for text in args.variant or ["halfvec:24:128"]:  # adengine's since 0020
            variant = Variant.parse(text)
            entry = {"variant": text, **build_index(conn, variant, args.reuse_index, args.maintenance_work_mem)}
            entry["results"] = []
            for ef in args.ef or [40, 200]:
                modes = [0] + [c for c in args.rerank or [] if variant.kind == "halfvec" and c <= ef]
                for rerank in modes:
                    entry["results"].append(measure(conn, variant, qs, exact, ef, rerank, args.rounds))
            entry["load_after"] = os.getloadavg()
            out["variants"].append(entry)
            if not args.keep_index:
                conn.execute(f"DROP INDEX {variant.name}")
        if not args.keep:
            conn.execute("DROP TABLE bench_vectors")
            conn.execute("DROP TABLE bench_truth")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, action="append", help="stored vectors (repeatable)")
    parser.add_argument("--variant", action="append", help="index: vector:M:EFC or halfvec:M:EFC (repeatable)")
    parser.add_argument("--ef", type=int, action="append", help="ef_search values to try")
    parser.add_argument("--rerank", type=int, action="append", help="halfvec: candidates re-ranked exactly")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=1, help="times each query is timed")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--maintenance-work-mem", default="4GB", help="large enough for the graph (pgvector warns)")
    parser.add_argument("--prepare", action="store_true", help="Load the table and the exact answers only.")
    parser.add_argument("--reuse", action="store_true", help="Reuse a table of the same size (implies --keep).")
    parser.add_argument("--keep", action="store_true", help="Keep the table for another run.")
    parser.add_argument("--reuse-index", action="store_true", help="Reuse an index kept by --keep-index.")
    parser.add_argument("--keep-index", action="store_true", help="Keep the index for another run.")
    parser.add_argument(
        "--data",
        choices=["shoppers", "topics"],
        default="shoppers",
        help="shoppers: mixes of the demo catalog's product vectors (default); topics: isotropic",
    )
    args = parser.parse_args()
    args.keep = args.keep or args.reuse or args.prepare
    results = [run(args, n) for n in (args.n or [100_000])]
    print(json.dumps(results))


if __name__ == "__main__":
    main()
