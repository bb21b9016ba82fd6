"""The evaluation protocol and the hybrid model's maths on hand-made logs with known answers (no database)."""

from __future__ import annotations

import numpy as np
import pytest

from adengine.ml import hybrid, interest_fit, protocol
from adengine.ml.hybrid import Params
from adengine.ml.protocol import KIND_CODE, EventLog

V, P = KIND_CODE["view"], KIND_CODE["purchase"]


def make_log(rows: list[tuple[int, int, int, float, int]], n_items: int) -> EventLog:
    """rows: (user, item, kind, time, order or -1)."""
    u, i, k, t, o = (np.array(col) for col in zip(*rows, strict=True))
    return EventLog(
        u.astype(np.int64), i.astype(np.int64), k.astype(np.int8), t.astype(np.float64), o.astype(np.int64), n_items
    )


@pytest.fixture
def small_log() -> EventLog:
    return make_log(
        [
            (1, 0, V, 1, -1),
            (1, 1, P, 2, 100),  # shopper 1, order 100: product 1
            (1, 2, V, 3, -1),
            (1, 2, P, 10, 101),  # shopper 1, last order 101: products 2 and 3
            (1, 3, P, 10, 101),
            (1, 1, P, 10, 101),  # ...and product 1 again (bought before)
            (2, 0, P, 1, 200),
            (2, 4, P, 5, 201),  # shopper 2, last order 201: product 4
            (3, 1, P, 4, 300),  # shopper 3: one order only, before the cut-off
            (3, 0, P, 4, 300),
        ],
        n_items=5,
    )


def test_split_holds_out_each_test_shoppers_last_order_and_fits_only_before_the_cut_off(small_log):
    # given last orders at t=10 (shopper 1), 5 (shopper 2), 4 (shopper 3)
    # when half of the shoppers are held out
    sp = protocol.split(small_log, test_share=0.5)
    # then the cut-off is t=5 and the shoppers whose last order is at or after it are tested
    assert sp.cutoff == 5
    assert [c.user for c in sp.cases] == [1, 2]
    one, two = sp.cases
    # every line of the last order is a target, except what was bought before
    assert set(one.targets) == {2, 3}
    assert set(one.exclude) == {1}
    assert set(two.targets) == {4} and set(two.exclude) == {0}
    # history strictly before the last order
    assert set(small_log.time[one.history]) == {1, 2, 3}
    # fitting sees only the events before the cut-off: not shopper 1's or 2's last order
    assert set(small_log.time[sp.train]) == {1, 2, 3, 4}
    assert sp.protocol["bought"] == "excluded"


def test_include_bought_keeps_repeat_purchases_as_targets(small_log):
    sp = protocol.split(small_log, test_share=0.5, include_bought=True)
    assert set(sp.cases[0].targets) == {1, 2, 3}
    assert sp.protocol["bought"] == "included"


def test_an_order_is_grouped_by_its_order_not_its_time():
    # two orders placed in the same second by one shopper: only the later-numbered one is the last order
    log = make_log([(1, 0, V, 1, -1), (1, 1, P, 2, 7), (1, 2, P, 2, 8), (2, 0, P, 1, 9)], n_items=3)
    sp = protocol.split(log, test_share=0.5)
    assert [set(c.targets) for c in sp.cases] == [{2}]


def test_popularity_baseline_is_counted_before_the_cut_off(small_log):
    sp = protocol.split(small_log, test_share=0.5)
    inputs = interest_fit.Inputs(
        log=small_log,
        item_content=np.eye(5, dtype=np.float32),
        user_content=lambda cases: np.zeros((len(cases), 5), np.float32),
        kind_weights=np.array([1.0, 1.0, 2.0, 3.0]),
    )
    pop = interest_fit.baselines(inputs, sp)["popularity"][0]
    # product 4 was only bought after the cut-off; products 0 and 1 by two shoppers each before it
    assert pop[4] == 0
    assert pop[0] == pop[1] == 2
    # products 2 and 3 were only bought in the held-out order (a view does not count)
    assert pop[2] == pop[3] == 0


def test_no_orders_is_a_clear_error():
    log = make_log([(1, 0, V, 1, -1)], n_items=2)
    with pytest.raises(protocol.ProtocolError, match="no shopper has an order"):
        protocol.split(log)


def test_metrics_on_known_rankings():
    cases = [
        protocol.Case(1, 0.0, np.array([0]), np.array([], np.int64), np.array([0])),
        protocol.Case(2, 0.0, np.array([11]), np.array([], np.int64), np.array([0])),
    ]
    scores = np.tile(-np.arange(20, dtype=np.float32), (2, 1))  # product 0 first, 11 twelfth
    m = protocol.case_metrics(scores, cases)
    assert list(m["hit"]) == [1.0, 0.0]
    assert m["ndcg"][0] == pytest.approx(1.0) and m["ndcg"][1] == 0.0
    assert m["rr"][0] == 1.0 and m["rr"][1] == pytest.approx(1 / 12)
    s = protocol.summarise(m, n_items=20)
    assert s["hr10"] == 0.5 and s["mrr"] == pytest.approx((1 + 1 / 12) / 2)
    assert s["coverage"] == pytest.approx(10 / 20)


def test_excluded_products_never_reach_the_top():
    cases = [protocol.Case(1, 0.0, np.array([3]), np.array([0, 1]), np.array([0]))]
    scores = protocol.ranked(np.array([[9, 8, 1, 2]], np.float32), cases, include_bought=False)
    assert list(protocol.case_metrics(scores, cases, k=2)["top"][0]) == [3, 2]


def test_sign_test_and_paired_comparison():
    assert protocol.sign_test(10, 0) == pytest.approx(2 / 1024)
    assert protocol.sign_test(5, 5) == 1.0
    better = protocol.paired_comparison(np.zeros(40), np.r_[np.ones(20), np.zeros(20)])
    assert better["diff"] == 0.5 and better["p_bootstrap"] < 0.01 and better["wins"] == 20
    same = protocol.paired_comparison(np.ones(10), np.ones(10))
    assert same["p_sign"] == 1.0


def copurchase_log(seed: int = 0, groups: int = 6, per_group: int = 10, users: int = 300) -> EventLog:
    """Shoppers belong to hidden groups of products; only the groups (what is bought together) predict."""
    rng = np.random.default_rng(seed)
    rows, order = [], 0
    for u in range(users):
        g = u % groups
        items = g * per_group + rng.choice(per_group, size=6, replace=False)
        t = rng.uniform(0, 100)
        for it in items[:3]:
            rows.append((u, int(it), V, t, -1))
            t += rng.uniform(0.1, 5)
        for it in items[3:]:
            rows.append((u, int(it), P, t, order))
            order += 1
            t += rng.uniform(1, 20)
    return make_log(rows, n_items=groups * per_group)


def test_weights_choose_the_part_that_carries_the_signal():
    # given a log where only co-purchase predicts, product text is noise and popularity is flat
    log = copurchase_log()
    rng = np.random.default_rng(1)
    inputs = interest_fit.Inputs(
        log=log,
        item_content=hybrid.unit_rows(rng.normal(size=(log.n_items, 16))),
        user_content=lambda cases: hybrid.unit_rows(rng.normal(size=(len(cases), 16))),
        kind_weights=np.array([1.0, 1.0, 2.0, 3.0]),
    )
    # when the weights are chosen
    choice = interest_fit.choose(inputs, grid=[Params(factors=8, alpha=5.0, half_life_days=30.0)])
    # then the collaborative part gets most of the weight and beats content alone on the held-out slice
    assert choice.weights["collab"] >= 0.6, choice.weights
    assert choice.validation["collab"]["hr10"] > 2 * choice.validation["content"]["hr10"]
    assert choice.validation["blend"]["hr10"] >= choice.validation["content"]["hr10"]


def test_fold_in_places_a_new_shopper_with_their_group():
    log = copurchase_log(seed=2)
    matrix = hybrid.interaction_matrix(log.user, log.item, np.ones(len(log)), (300, log.n_items))
    factors = hybrid.fit_factors(matrix, Params(factors=8, alpha=5.0))
    # a new shopper who viewed three products of group 2 (items 20-29)
    row = hybrid.interaction_matrix(np.zeros(3, int), np.array([21, 24, 27]), np.ones(3), (1, log.n_items))
    u = hybrid.fold_in(factors, row, Params(factors=8, alpha=5.0))
    top = np.argsort(-(factors @ u[0]))[:10]
    assert sum(20 <= i < 30 for i in top) >= 8


def test_stored_vectors_reproduce_the_blended_score():
    rng = np.random.default_rng(3)
    content_items = hybrid.unit_rows(rng.normal(size=(30, 8)))
    content_users = hybrid.unit_rows(rng.normal(size=(4, 8)))
    factors = rng.normal(size=(30, 5)).astype(np.float32)
    users_f = rng.normal(size=(4, 5)).astype(np.float32)
    pop = rng.random(30).astype(np.float32)
    mean = content_items.mean(axis=0)
    scale = float(np.linalg.norm(factors, axis=1).max())
    weights = {"content": 0.5, "collab": 0.3, "popularity": 0.2}
    spread = {"content": 0.4, "collab": 0.7, "popularity": 0.2}
    hv = hybrid.HybridVectors(weights, spread, mean, scale, Params())
    stored = hv.shopper_vectors(content_users, users_f) @ hv.product_vectors(content_items, factors, pop).T
    parts = hybrid.Parts(
        users={
            "content": hybrid.centred(content_users, mean),
            "collab": hybrid.unit_rows(users_f),
            "popularity": np.ones((4, 1), np.float32),
        },
        items={
            "content": hybrid.centred(content_items, mean),
            "collab": factors / scale,
            "popularity": pop.reshape(-1, 1),
        },
    )
    assert np.allclose(stored, hybrid.blend_scores(parts, weights, spread), atol=1e-5)


def test_ease_places_a_new_shopper_with_their_group_through_its_low_rank_form():
    log = copurchase_log(seed=4)
    matrix = hybrid.interaction_matrix(log.user, log.item, np.ones(len(log)), (300, log.n_items))
    p = Params(factors=16, regularization=4 * hybrid.ease_scale(matrix), method="ease")
    fold, right = hybrid.fit_ease(matrix, p)
    row = hybrid.interaction_matrix(np.zeros(3, int), np.array([31, 34, 37]), np.ones(3), (1, log.n_items))
    u = hybrid.user_factors(p, row, factors=right, fold=fold)
    top = np.argsort(-(right @ u[0]))[:10]
    assert sum(30 <= i < 40 for i in top) >= 8


def test_the_settings_search_tries_both_collaborative_methods_with_a_data_scaled_regularisation():
    grid = interest_fit.params_grid(1000, 50_000, Params(half_life_days=14.0), ease_unit=20.0)
    assert {p.method for p in grid} == {"als", "ease"}
    assert sorted({p.regularization for p in grid if p.method == "ease"}) == [20.0, 80.0]
    assert {p.session_hours for p in grid if p.method == "ease"} == {0.0, 3.0}
    assert {p.half_life_days for p in grid} == {14.0, 60.0}


def test_sessions_split_on_the_shopper_and_on_long_gaps():
    users = np.array([1, 1, 1, 2, 1])
    times = np.array([0.0, 600.0, 20000.0, 10.0, 20100.0])
    s = hybrid.sessions(users, times, gap_hours=3)
    assert s[0] == s[1] and s[2] == s[4] and s[0] != s[2] and s[3] not in (s[0], s[2])


def test_top_svd_matches_the_exact_leading_singular_values():
    rng = np.random.default_rng(5)
    m = rng.normal(size=(300, 40)) @ rng.normal(size=(40, 300)) + 0.01 * rng.normal(size=(300, 300))
    u, s, vt = hybrid.top_svd(m, 20)
    exact = np.linalg.svd(m, compute_uv=False)[:20]
    assert np.allclose(s, exact, rtol=1e-2)
    assert np.allclose(u.T @ u, np.eye(20), atol=1e-6)
