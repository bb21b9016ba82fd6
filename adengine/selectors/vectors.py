"""Nearest-neighbour queries on pgvector (HNSW, cosine)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from django.db import connection, transaction
from pgvector.django import CosineDistance, MaxInnerProduct

from adengine.conf import settings as ad_settings
from adengine.models import ProductVector


def _ef_search(cur, ef_search: int | None) -> None:
    cur.execute("SELECT set_config('hnsw.ef_search', %s, true)", [str(int(ef_search or ad_settings.HNSW_EF_SEARCH))])


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
