"""Shopper nearest-neighbour queries: a half-precision HNSW index, its candidates re-ranked exactly, settings used."""

from __future__ import annotations

import numpy as np
import pytest
from django.core.checks import run_checks
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from adengine.models import Shopper
from adengine.selectors import vectors
from adengine.selectors.audience import nearest_shoppers
from adengine.selectors.vectors import EF_SEARCH_BY_ROWS, EF_SEARCH_LARGEST, ef_search_by_rows, ef_search_for
from tests.conftest import adengine_settings
from tests.factories import ShopperFactory

pytestmark = pytest.mark.django_db

DIM = 384


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v)).astype(np.float32)


def _cosine(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return 1.0 - float(a @ b / np.sqrt((a @ a) * (b @ b)))


def _half(v):
    return np.asarray(v, np.float32).astype(np.float16).astype(np.float32)


def _pair_reversed_by_half_precision(rng: np.random.Generator):
    """A query and two vectors a, b: a is nearer in full precision, b nearer once all three are rounded to halfvec."""
    u = _unit(rng.normal(size=DIM))
    q = _unit(u + rng.normal(0, 0.05, DIM))  # cosine distance about 0.3 (others: about 1)
    for _ in range(10_000):
        a = (u + rng.normal(0, 2e-5, DIM)).astype(np.float32)
        b = (u + rng.normal(0, 2e-5, DIM)).astype(np.float32)
        exact = _cosine(q, a) - _cosine(q, b)
        halved = _cosine(_half(q), _half(a)) - _cosine(_half(q), _half(b))
        if exact < -3e-6 and halved > 3e-6:  # clear of float32 rounding in pgvector's sums
            return q, a, b
    raise AssertionError("no pair found")


@pytest.fixture
def reversed_pair():
    # given a target, two close shoppers whose order half precision reverses, and others far away
    rng = np.random.default_rng(7)
    q, a, b = _pair_reversed_by_half_precision(rng)
    nearer, second = ShopperFactory(interest_vector=a), ShopperFactory(interest_vector=b)
    for _ in range(6):
        ShopperFactory(interest_vector=_unit(rng.normal(size=DIM)))
    return q, nearer, second


def test_the_rerank_returns_the_exact_nearest_among_the_candidates(reversed_pair):
    q, nearer, second = reversed_pair
    # when the index gives two candidates per result (the default factor 2)
    with adengine_settings(ANN_RERANK_FACTOR=2):
        members = nearest_shoppers(q, k=1)
    # then the shopper nearest in full precision wins, with its exact distance
    assert [m.shopper.pk for m in members] == [nearer.pk]
    assert members[0].distance == pytest.approx(_cosine(q, nearer.interest_vector), abs=1e-6)


def test_without_a_rerank_the_index_order_decides(reversed_pair):
    q, nearer, second = reversed_pair
    # when only k candidates are taken (the setting honoured), the half-precision order decides which one
    with adengine_settings(ANN_RERANK_FACTOR=1):
        members = nearest_shoppers(q, k=1)
    assert [m.shopper.pk for m in members] == [second.pk]


def test_results_come_in_exact_order(reversed_pair):
    q, nearer, second = reversed_pair
    members = nearest_shoppers(q, k=5)
    assert [m.shopper.pk for m in members][:2] == [nearer.pk, second.pk]
    exact = [_cosine(q, m.shopper.interest_vector) for m in members]
    assert exact == sorted(exact) and [m.distance for m in members] == pytest.approx(exact, abs=1e-6)


def test_the_candidate_query_uses_the_half_precision_index(reversed_pair):
    q, _, _ = reversed_pair
    # given the query adengine sends
    with CaptureQueriesContext(connection) as ctx:
        nearest_shoppers(q, k=2)
    sql = next(c["sql"] for c in ctx.captured_queries if "halfvec" in c["sql"])
    # then PostgreSQL can answer it from the HNSW index (the cast in the query is the index's expression)
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SET LOCAL enable_seqscan = off")
        cur.execute("EXPLAIN " + sql)
        plan = "\n".join(r[0] for r in cur.fetchall())
    assert "adengine_shopper_interest_half" in plan


def test_ef_search_and_the_candidate_count_are_honoured(reversed_pair):
    q, _, _ = reversed_pair
    with adengine_settings(HNSW_EF_SEARCH=300, ANN_RERANK_FACTOR=3), CaptureQueriesContext(connection) as ctx:
        nearest_shoppers(q, k=4)
    sql = "\n".join(c["sql"] for c in ctx.captured_queries)
    assert "set_config('hnsw.ef_search', '300', true)" in sql
    assert "set_config('hnsw.iterative_scan', 'relaxed_order', true)" in sql
    assert "LIMIT 12" in sql  # 4 results x 3 candidates each
    # and ef_search is never below the candidates asked for
    with adengine_settings(HNSW_EF_SEARCH=10, ANN_RERANK_FACTOR=5), CaptureQueriesContext(connection) as ctx:
        nearest_shoppers(q, k=4)
    assert "set_config('hnsw.ef_search', '20', true)" in "\n".join(c["sql"] for c in ctx.captured_queries)


def test_ef_search_by_the_number_of_shoppers():
    # given no HNSW_EF_SEARCH, it follows the size of the table searched
    assert ef_search_by_rows(10_000) == EF_SEARCH_BY_ROWS[0][1] < EF_SEARCH_LARGEST
    assert ef_search_by_rows(EF_SEARCH_BY_ROWS[-1][0]) == EF_SEARCH_LARGEST
    assert ef_search_by_rows(1_000_000) == EF_SEARCH_LARGEST
    assert [ef for _, ef in EF_SEARCH_BY_ROWS] + [EF_SEARCH_LARGEST] == sorted(
        [ef for _, ef in EF_SEARCH_BY_ROWS] + [EF_SEARCH_LARGEST]
    )
    # and the estimate comes from PostgreSQL's statistics of the shopper table
    ShopperFactory.create_batch(3)
    with connection.cursor() as cur:
        cur.execute(f"ANALYZE {Shopper._meta.db_table}")
    vectors._rows.clear()
    assert vectors.table_rows(Shopper) == 3
    with adengine_settings(HNSW_EF_SEARCH=None):
        assert ef_search_for(Shopper) == EF_SEARCH_BY_ROWS[0][1]
        assert ef_search_for(Shopper, at_least=500) == 500


@pytest.mark.parametrize(
    ("overrides", "what"),
    [
        ({"HNSW_EF_SEARCH": 0}, "HNSW_EF_SEARCH"),
        ({"HNSW_EF_SEARCH": "80"}, "HNSW_EF_SEARCH"),
        ({"ANN_RERANK_FACTOR": 0}, "ANN_RERANK_FACTOR"),
        ({"ANN_RERANK_FACTOR": 1.5}, "ANN_RERANK_FACTOR"),
    ],
)
def test_bad_ann_settings_are_a_clear_error(overrides, what):
    with adengine_settings(**overrides):
        errors = [e for e in run_checks() if e.id == "adengine.E016"]
    assert len(errors) == 1 and what in errors[0].msg
