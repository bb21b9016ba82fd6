"""Nearest-neighbour queries on pgvector (HNSW, cosine)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from django.db import connection, transaction
from pgvector.django import CosineDistance

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
