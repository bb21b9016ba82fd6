"""Nearest-neighbour queries on pgvector (HNSW, cosine)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from django.db import connection, transaction
from pgvector.django import CosineDistance

from adengine.conf import settings as ad_settings
from adengine.models import ProductVector, Shopper


def _ef_search(cur, ef_search: int | None) -> None:
    cur.execute("SELECT set_config('hnsw.ef_search', %s, true)", [str(int(ef_search or ad_settings.HNSW_EF_SEARCH))])


def nearest_products(vector: Sequence[float] | np.ndarray, *, k: int = 10, ef_search: int | None = None) -> list:
    """Primary keys of the ``k`` products whose vectors are nearest (cosine) to ``vector``."""
    with transaction.atomic(), connection.cursor() as cur:
        _ef_search(cur, ef_search)
        return list(
            ProductVector.objects.order_by(CosineDistance("embedding", vector)).values_list("product_id", flat=True)[:k]
        )


def nearest_products_with_distance(vector, *, k: int = 10, ef_search: int | None = None) -> list[tuple]:
    """(product pk, cosine distance) of the ``k`` nearest products."""
    with transaction.atomic(), connection.cursor() as cur:
        _ef_search(cur, ef_search)
        qs = ProductVector.objects.annotate(distance=CosineDistance("embedding", vector)).order_by("distance")
        return list(qs.values_list("product_id", "distance")[:k])


def shopper_vector(shopper: Shopper) -> np.ndarray | None:
    """The shopper's interest vector as a numpy array, or None."""
    v = shopper.interest_vector
    return None if v is None else np.asarray(v, dtype=np.float32)
