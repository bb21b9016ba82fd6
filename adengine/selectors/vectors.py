"""Nearest-neighbour queries on pgvector (HNSW): the query-time settings and the product queries.

``hnsw.ef_search`` comes from ``ADENGINE["HNSW_EF_SEARCH"]``, or by the size of the table searched when that is None;
shopper queries (``selectors.audience``) search a half-precision index and re-rank its candidates exactly
(``rerank_candidates``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
from django.db import connection, models, transaction
from pgvector import HalfVector
from pgvector.django import CosineDistance, MaxInnerProduct

from adengine.conf import settings as ad_settings
from adengine.models import ProductVector

# hnsw.ef_search by the rows searched when HNSW_EF_SEARCH is None: (fewer rows than, ef_search), then the rest
# (measured by bench/ann_search.py, BENCHMARKS.md "Nearest-neighbour search")
EF_SEARCH_BY_ROWS = ((200_000, 40),)
EF_SEARCH_LARGEST = 200
_ROWS_TTL_SECONDS = 600
_rows: dict[str, tuple[float, float]] = {}


def table_rows(model: type[models.Model]) -> float:
    """PostgreSQL's estimate of the model's rows (``pg_class.reltuples``, kept by autovacuum), cached for 10 minutes."""
    table = model._meta.db_table
    now = time.monotonic()
    hit = _rows.get(table)
    if hit is not None and now - hit[1] < _ROWS_TTL_SECONDS:
        return hit[0]
    with connection.cursor() as cur:
        cur.execute("SELECT reltuples FROM pg_class WHERE oid = to_regclass(%s)", [table])
        row = cur.fetchone()
    rows = max(float(row[0]), 0.0) if row else 0.0  # -1: never analysed
    _rows[table] = (rows, now)
    return rows


def ef_search_for(model: type[models.Model], *, at_least: int = 0) -> int:
    """``hnsw.ef_search`` for a query on ``model``'s index: the setting, or chosen by the table's size; at least
    ``at_least`` (the rows the query asks for)."""
    configured = ad_settings.HNSW_EF_SEARCH
    ef = int(configured) if configured is not None else ef_search_by_rows(table_rows(model))
    return max(ef, int(at_least))


def ef_search_by_rows(rows: float) -> int:
    """The ``hnsw.ef_search`` that keeps recall@10 at about 0.95 or more on an index of ``rows`` vectors."""
    return next((ef for below, ef in EF_SEARCH_BY_ROWS if rows < below), EF_SEARCH_LARGEST)


def rerank_candidates(k: int) -> int:
    """How many candidates a shopper query takes from the half-precision index to return ``k`` exactly."""
    return int(k) * max(1, int(ad_settings.ANN_RERANK_FACTOR))


def set_hnsw(cur, *, ef_search: int, iterative: bool = False) -> None:
    """Set ``hnsw.ef_search`` (and the iterative scan, for filtered queries) for the current transaction."""
    cur.execute("SELECT set_config('hnsw.ef_search', %s, true)", [str(int(ef_search))])
    if iterative:
        # relaxed order: the scan goes on past ef_search until the filters let enough rows through; the caller
        # sorts the rows it keeps by the exact distance
        cur.execute("SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true)")


def half_query(vector) -> HalfVector:
    """A query vector for a half-precision index (a list, an array or a pgvector ``Vector``)."""
    return HalfVector(vector.to_numpy() if hasattr(vector, "to_numpy") else np.asarray(vector, np.float32))


def _ef_search(cur, ef_search: int | None) -> None:
    set_hnsw(cur, ef_search=ef_search or ef_search_for(ProductVector))


def nearest_products(vector: Sequence[float] | np.ndarray, *, k: int = 10, ef_search: int | None = None) -> list:
    """Primary keys of the ``k`` products whose vectors are nearest (cosine) to ``vector``."""
    return [pk for pk, _ in nearest_products_with_distance(vector, k=k, ef_search=ef_search)]


def nearest_products_with_distance(vector, *, k: int = 10, ef_search: int | None = None) -> list[tuple]:
    """(product pk, cosine distance) of the ``k`` nearest products."""
    with transaction.atomic(), connection.cursor() as cur:
        _ef_search(cur, ef_search)
        qs = ProductVector.objects.annotate(distance=CosineDistance("embedding", vector)).order_by("distance")
        return list(qs.values_list("product_id", "distance")[:k])


def best_products_for(shopper, *, k: int = 10, ef_search: int | None = None) -> list[tuple]:
    """(product pk, score) of the ``k`` products the shopper's interests rank highest, in one pgvector query.

    With the active hybrid interest model: the inner product of hybrid vectors (content, what shoppers
    buy together, popularity, by the model's weights) on the HNSW ``vector_ip_ops`` index. Without it:
    cosine similarity of the content vectors.
    """
    if shopper.interest_hybrid is not None and shopper.interest_hybrid_model:
        with transaction.atomic(), connection.cursor() as cur:
            _ef_search(cur, ef_search)
            qs = (
                ProductVector.objects.filter(hybrid_model=shopper.interest_hybrid_model)
                .annotate(neg=MaxInnerProduct("hybrid", shopper.interest_hybrid))
                .order_by("neg")
            )
            rows = list(qs.values_list("product_id", "neg")[:k])
        if rows:
            return [(pk, -float(neg)) for pk, neg in rows]
    if shopper.interest_vector is None:
        return []
    return [(pk, 1.0 - float(d)) for pk, d in nearest_products_with_distance(shopper.interest_vector, k=k)]
