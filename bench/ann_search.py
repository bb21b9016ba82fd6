"""Nearest-neighbour search on pgvector: recall@10 against exact search, and p50 / p99 latency.

Stores N unit 384-d vectors in a scratch table shaped like adengine's, builds the same HNSW index adengine uses
(m=16, ef_construction=64, cosine), and times ``ORDER BY v <=> q LIMIT 10`` for several
``hnsw.ef_search`` values against exact (sequential) search on the same queries.

Data: ``--data shoppers`` (default) makes vectors the way adengine makes interest vectors --
weighted mixes of 1-4 of the demo catalog's real product embeddings plus noise -- so it needs the
demo data embedded; ``--data topics`` is a harder isotropic case (500 random topics, wide noise).

    python -m shop.embedded run -- .venv/bin/python bench/ann_search.py --n 100000 [--n 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

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


def build(conn, n: int, seed: int, reuse: bool = False, data: str = "shoppers") -> np.ndarray:
    rng = np.random.default_rng(seed)
    if data == "shoppers":
        anchors = np.stack(
            [
                np.asarray(v.to_numpy() if hasattr(v, "to_numpy") else v, np.float32)
                for (v,) in conn.execute("SELECT embedding FROM adengine_productvector").fetchall()
            ]
        )
        if len(anchors) < 50:
            raise SystemExit("load the demo data and embed the catalog first (make demo)")

        def clustered(m, rng, _centres):  # noqa: F811 - same call shape as the topic generator
            return shopper_like(m, rng, anchors)

        centres = anchors
    else:
        centres = rng.normal(size=(500, DIM)).astype(np.float32)
        centres /= np.linalg.norm(centres, axis=1, keepdims=True)
        clustered = topics
    exists = conn.execute("SELECT to_regclass('bench_vectors') IS NOT NULL").fetchone()[0]
    if reuse and exists and conn.execute("SELECT count(*) FROM bench_vectors").fetchone()[0] == n:
        done = 0
        while done < n:  # replay the generator so the queries are the same as after a fresh build
            done += len(clustered(min(50_000, n - done), rng, centres))
        print(f"n={n}: reusing the table and index built before", flush=True)
        return clustered(200, rng, centres)
    conn.execute("DROP TABLE IF EXISTS bench_vectors")
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
    load = time.perf_counter() - t
    conn.execute("SET maintenance_work_mem = '3GB'")
    conn.execute("SET max_parallel_maintenance_workers = 2")
    t = time.perf_counter()
    conn.execute("CREATE INDEX ON bench_vectors USING hnsw (v vector_cosine_ops) WITH (m = 16, ef_construction = 64)")
    index = time.perf_counter() - t
    conn.execute("ANALYZE bench_vectors")
    print(f"n={n}: loaded in {load:.0f} s, HNSW index built in {index:.0f} s", flush=True)
    return clustered(200, rng, centres)


def run(n: int, seed: int, ef_values: list[int], queries: int, reuse: bool, keep: bool, data: str) -> dict:
    url = os.environ["DATABASE_URL"]
    # prepare_threshold=None: no server-side prepared statements, whose cached plan from the exact
    # (index scans off) phase would otherwise be reused and time a sequential scan
    with psycopg.connect(url, autocommit=True, prepare_threshold=None) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        register_vector(conn)
        qs = build(conn, n, seed, reuse, data)[:queries]
        exact = []
        conn.execute("SET enable_indexscan = off")
        for q in qs:
            exact.append(
                {r[0] for r in conn.execute("SELECT id FROM bench_vectors ORDER BY v <=> %s LIMIT 10", [q]).fetchall()}
            )
        conn.execute("SET enable_indexscan = on")
        plan = "\n".join(
            r[0]
            for r in conn.execute("EXPLAIN SELECT id FROM bench_vectors ORDER BY v <=> %s LIMIT 10", [qs[0]]).fetchall()
        )
        assert "bench_vectors_v_idx" in plan, f"the HNSW index is not used:\n{plan}"
        out = {"n": n, "data": data, "queries": len(qs), "m": 16, "ef_construction": 64, "results": []}
        for ef in ef_values:
            conn.execute(f"SET hnsw.ef_search = {ef}")
            for q in qs:  # warm the index pages for this ef_search
                conn.execute("SELECT id FROM bench_vectors ORDER BY v <=> %s LIMIT 10", [q]).fetchall()
            lat, recall = [], []
            for q, truth in zip(qs, exact, strict=True):
                t = time.perf_counter()
                got = {
                    r[0]
                    for r in conn.execute("SELECT id FROM bench_vectors ORDER BY v <=> %s LIMIT 10", [q]).fetchall()
                }
                lat.append((time.perf_counter() - t) * 1000)
                recall.append(len(got & truth) / 10)
            lat.sort()
            row = {
                "ef_search": ef,
                "recall10": statistics.mean(recall),
                "p50_ms": lat[len(lat) // 2],
                "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))],
            }
            out["results"].append(row)
            print(
                f"  ef_search={ef:>4}: recall@10 {row['recall10']:.3f}  p50 {row['p50_ms']:.2f} ms  "
                f"p99 {row['p99_ms']:.2f} ms",
                flush=True,
            )
        if not keep:
            conn.execute("DROP TABLE bench_vectors")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, action="append", help="stored vectors (repeatable)")
    parser.add_argument("--ef", type=int, action="append", help="ef_search values to try")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--reuse", action="store_true", help="Reuse a table of the same size left by --keep.")
    parser.add_argument("--keep", action="store_true", help="Keep the table and index for another run.")
    parser.add_argument(
        "--data",
        choices=["shoppers", "topics"],
        default="shoppers",
        help="shoppers: mixes of the demo catalog's product vectors (default); topics: isotropic",
    )
    args = parser.parse_args()
    results = [
        run(n, args.seed, args.ef or [40, 80, 120, 200], args.queries, args.reuse, args.keep, args.data)
        for n in (args.n or [100_000])
    ]
    print(json.dumps(results))


if __name__ == "__main__":
    main()
