"""Nearest-neighbour search on pgvector: recall@10 against exact search, and p50 / p99 latency.

Stores N unit 384-d vectors in a scratch table shaped like adengine's (clustered like real
embeddings: a mixture of 500 topics with wide noise), builds the same HNSW index adengine uses
(m=16, ef_construction=64, cosine), and times ``ORDER BY v <=> q LIMIT 10`` for several
``hnsw.ef_search`` values against exact (sequential) search on the same queries.

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


def clustered(n: int, rng: np.random.Generator, centres: np.ndarray) -> np.ndarray:
    # noise of 0.07 per dimension puts a point at cosine ~0.6 from its topic's centre: topics overlap,
    # and the 10 nearest neighbours are not simply "the same topic" (which would make recall trivial)
    idx = rng.integers(0, len(centres), n)
    v = centres[idx] + rng.normal(0, 0.07, (n, DIM)).astype(np.float32)
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def build(conn, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(500, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
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


def run(n: int, seed: int, ef_values: list[int], queries: int) -> dict:
    url = os.environ["DATABASE_URL"]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        register_vector(conn)
        qs = build(conn, n, seed)[:queries]
        exact = []
        conn.execute("SET enable_indexscan = off")
        for q in qs:
            exact.append(
                {r[0] for r in conn.execute("SELECT id FROM bench_vectors ORDER BY v <=> %s LIMIT 10", [q]).fetchall()}
            )
        conn.execute("SET enable_indexscan = on")
        conn.execute("SET enable_seqscan = off")  # measure the index, never a fallback sequential scan
        out = {"n": n, "queries": len(qs), "m": 16, "ef_construction": 64, "results": []}
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
        conn.execute("DROP TABLE bench_vectors")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, action="append", help="stored vectors (repeatable)")
    parser.add_argument("--ef", type=int, action="append", help="ef_search values to try")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    results = [run(n, args.seed, args.ef or [40, 80, 120, 200], args.queries) for n in (args.n or [100_000])]
    print(json.dumps(results))


if __name__ == "__main__":
    main()
