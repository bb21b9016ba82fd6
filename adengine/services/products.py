"""Product vectors: embed the catalog, re-embed what changed."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable

from adengine.adapters import get_adapter
from adengine.ml.encoder import Encoder, get_encoder
from adengine.models import ProductVector

log = logging.getLogger(__name__)


def _hash(text: str, version: str) -> str:
    return hashlib.sha256(f"{version}\n{text}".encode()).hexdigest()


def embed_products(
    *,
    product_ids: Iterable | None = None,
    force: bool = False,
    batch_size: int = 128,
    encoder: Encoder | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Embed the given products (all when None) whose text or encoder changed; returns how many.

    Products that no longer exist are skipped, so the task survives rows deleted under it.
    """
    adapter = get_adapter()
    encoder = encoder or get_encoder()
    qs = adapter.products().order_by("pk")
    if product_ids is not None:
        ids = [adapter.product_model()._meta.pk.to_python(pk) for pk in product_ids]
        qs = qs.filter(pk__in=ids)
    stored = ProductVector.objects.all() if product_ids is None else ProductVector.objects.filter(product_id__in=ids)
    known = {} if force else dict(stored.values_list("product_id", "text_hash"))
    written = 0
    pending: list[tuple[object, str, str]] = []

    def flush() -> None:
        nonlocal written
        if not pending:
            return
        vectors = encoder.encode_passages([text for _, text, _ in pending])
        ProductVector.objects.bulk_create(
            [
                ProductVector(product_id=pk, embedding=vec, model_version=encoder.version, text_hash=h)
                for (pk, _, h), vec in zip(pending, vectors, strict=True)
            ],
            update_conflicts=True,
            unique_fields=["product"],
            update_fields=["embedding", "model_version", "text_hash", "updated_at"],
        )
        written += len(pending)
        if progress:
            progress(len(pending))
        pending.clear()

    for product in qs.iterator(chunk_size=500):
        text = adapter.product_text(product)
        h = _hash(text, encoder.version)
        if known.get(product.pk) == h:
            continue
        pending.append((product.pk, text, h))
        if len(pending) >= batch_size:
            flush()
    flush()
    return written
