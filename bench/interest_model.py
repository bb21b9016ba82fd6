"""Speed of the hybrid interest model's collaborative part: training, fold-in, incremental vs full refresh.

Synthetic behaviour with the shape of a mid-size shop: ``--shoppers`` shoppers, ``--products``
products with Zipf popularity, ``--interactions`` views / carts / purchases drawn from hidden taste
groups. Measures, on this machine:

- one ALS fit (``implicit``) and one EASE fit, and the whole settings search (``params_grid``: the
  scheduled training's cost before its final fit);
- folding in one changed shopper (the exact ALS user step) and a full refresh's throughput;
- an incremental refresh of 1 % of the shoppers against a full refresh.

No database: the refresh's database side is the same batched query for both, so the ratio is the
fold-in's. Run: ``python bench/interest_model.py [--shoppers 100000 --interactions 1000000]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from adengine.ml import hybrid  # noqa: E402
from adengine.ml.hybrid import Params  # noqa: E402
from adengine.ml.interest_fit import params_grid  # noqa: E402


def synthetic(shoppers: int, products: int, interactions: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    groups = 50
    group_of_item = rng.integers(0, groups, products)
    appeal = 1.0 / np.arange(1, products + 1) ** 0.8
    rng.shuffle(appeal)
    by_group = [np.flatnonzero(group_of_item == g) for g in range(groups)]
    users = rng.integers(0, shoppers, interactions)
    user_group = rng.integers(0, groups, shoppers)
    own = rng.random(interactions) < 0.6
    items = np.empty(interactions, np.int64)
    pop_p = appeal / appeal.sum()
    items[~own] = rng.choice(products, size=int((~own).sum()), p=pop_p)
    for g in range(groups):
        sel = own & (user_group[users] == g)
        pool = by_group[g]
        w = appeal[pool] / appeal[pool].sum()
        items[sel] = rng.choice(pool, size=int(sel.sum()), p=w)
    kinds = rng.choice([1.0, 2.0, 3.0], size=interactions, p=[0.8, 0.12, 0.08])
    return users, items, kinds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shoppers", type=int, default=100_000)
    ap.add_argument("--products", type=int, default=20_000)
    ap.add_argument("--interactions", type=int, default=1_000_000)
    args = ap.parse_args()
    users, items, weights = synthetic(args.shoppers, args.products, args.interactions)
    matrix = hybrid.interaction_matrix(users, items, weights, (args.shoppers, args.products))
    print(f"{args.interactions:,} interactions, {args.shoppers:,} shoppers, {args.products:,} products")
    base = Params(factors=64, alpha=10.0)
    t = time.perf_counter()
    factors = hybrid.fit_factors(matrix, base)
    one_fit = time.perf_counter() - t
    print(f"one ALS fit (64 factors, 15 iterations): {one_fit:.1f} s")
    unit = hybrid.ease_scale(matrix)
    grid = params_grid(args.products, args.interactions, Params(), ease_unit=unit)
    fits = {(p.factors, p.alpha) for p in grid if p.method == "als"}
    ease_fits = len({(p.regularization, p.session_hours) for p in grid if p.method == "ease"})
    t = time.perf_counter()
    for f, a in sorted(fits):
        if (f, a) != (64, 10.0):
            hybrid.fit_factors(matrix, Params(factors=f, alpha=a))
    search = time.perf_counter() - t + one_fit
    print(f"settings search: {len(fits)} ALS fits in {search:.1f} s (+ one final fit)")
    t = time.perf_counter()
    hybrid.fit_ease(matrix, Params(factors=64, regularization=4 * unit, method="ease"))
    ease = time.perf_counter() - t
    print(f"one EASE fit ({hybrid.EASE_MAX_ITEMS:,} most active products, rank 64): {ease:.1f} s")
    print(f"whole settings search ({len(fits)} ALS + {ease_fits} EASE fits): {search + ease_fits * ease:.1f} s")
    gram = factors.T.astype(np.float64) @ factors.astype(np.float64)
    rows = matrix
    # one changed shopper, many times: the exact ALS user step
    picks = np.random.default_rng(1).integers(0, args.shoppers, 200)
    t = time.perf_counter()
    for r in picks:
        hybrid.fold_in(factors, rows[r], base, gram=gram)
    per_shopper = (time.perf_counter() - t) / len(picks) * 1000
    print(f"fold-in of one changed shopper: {per_shopper:.2f} ms")
    t = time.perf_counter()
    hybrid.fold_in(factors, rows, base, gram=gram)
    full = time.perf_counter() - t
    print(f"full refresh (fold-in of every shopper): {full:.1f} s = {args.shoppers / full:,.0f} shoppers/s")
    some = np.random.default_rng(2).choice(args.shoppers, args.shoppers // 100, replace=False)
    t = time.perf_counter()
    hybrid.fold_in(factors, rows[some], base, gram=gram)
    part = time.perf_counter() - t
    print(f"incremental refresh of 1 % of shoppers: {part:.2f} s = {part / full * 100:.1f} % of a full refresh")


if __name__ == "__main__":
    main()
