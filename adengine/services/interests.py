"""Interest vectors: one unit vector per consenting shopper, refreshed incrementally."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable

import numpy as np
from django.db import transaction
from django.utils import timezone

from adengine.adapters import get_adapter
from adengine.conf import settings as ad_settings
from adengine.db import try_advisory_lock
from adengine.ml import profile
from adengine.ml.encoder import Encoder, get_encoder
from adengine.models import BehaviourEvent, ProductVector, Shopper
from adengine.selectors.shoppers import recent_events, stale_shoppers

log = logging.getLogger(__name__)

METHODS = ("text", "mean", "blend")
_REFRESH_LOCK = 0x6164656E  # "aden": pg advisory lock id of the refresh job


def method_tag(encoder: Encoder, method: str | None = None) -> str:
    """What interest_model records: encoder version and method."""
    return f"{encoder.version}:{method or ad_settings.INTEREST_METHOD}"


def _normalise(v: np.ndarray) -> np.ndarray | None:
    n = float(np.linalg.norm(v))
    return v / n if n > 1e-9 else None


def to_profile_events(events: Iterable[BehaviourEvent], labels: dict) -> list[profile.Event]:
    """Turn stored events into preprocessing events, with each product's label."""
    return [
        profile.Event(
            kind=e.kind,
            occurred_at=e.occurred_at,
            product_id=e.product_id,
            product_label=labels.get(e.product_id, ""),
            query=e.query,
        )
        for e in events
    ]


def product_labels(product_ids: Iterable) -> dict:
    """Short, personal-data-free label of each product: title · brand · category (default language)."""
    adapter = get_adapter()
    lang = ad_settings.default_language
    ids = {pk for pk in product_ids if pk is not None}
    out = {}
    for p in adapter.products().filter(pk__in=ids):
        title = adapter.product_title(p, lang)
        brand = adapter.product_brand(p)
        cat = adapter.category_name(adapter.product_category(p), lang)
        parts = [title] + ([brand] if brand and brand.lower() not in title.lower() else []) + [cat]
        out[p.pk] = " · ".join(x for x in parts if x)
    return out


def product_vectors(product_ids: Iterable) -> dict:
    """Stored vectors of the given products."""
    ids = {pk for pk in product_ids if pk is not None}
    return {
        pk: np.asarray(v, dtype=np.float32)
        for pk, v in ProductVector.objects.filter(product_id__in=ids).values_list("product_id", "embedding")
    }


def _at(now: dt.datetime | dict, key: object) -> dt.datetime:
    return now[key] if isinstance(now, dict) else now


def text_vectors(
    histories: dict[object, list[profile.Event]], *, now: dt.datetime | dict, encoder: Encoder
) -> dict[object, np.ndarray]:
    """Encode each non-empty history's behaviour text (the 'text' method); ``now`` may differ per key."""
    texts = {
        k: profile.behaviour_text(
            h,
            _at(now, k),
            weights=ad_settings.EVENT_WEIGHTS,
            half_life_days=ad_settings.RECENCY_HALF_LIFE_DAYS,
            max_chars=ad_settings.PROFILE_MAX_CHARS,
        )
        for k, h in histories.items()
    }
    keys = [k for k, t in texts.items() if t]
    return dict(zip(keys, encoder.encode_queries([texts[k] for k in keys]), strict=True))


def query_vectors(histories: dict[object, list[profile.Event]], *, encoder: Encoder | None) -> dict[str, np.ndarray]:
    """Encoded search queries of the histories (each distinct query once; none without an encoder)."""
    queries = sorted({e.query for h in histories.values() for e in h if e.kind == "search" and e.query})
    if not queries or encoder is None:
        return {}
    return dict(zip(queries, encoder.encode_queries(queries), strict=True))


def mean_vectors(
    histories: dict[object, list[profile.Event]],
    *,
    now: dt.datetime | dict,
    vectors: dict,
    queries: dict[str, np.ndarray] | None = None,
) -> dict[object, np.ndarray]:
    """Recency-weighted mean of the vectors of the products in each history and of its searches (the 'mean' method)."""
    out = {}
    queries = queries or {}
    for k, h in histories.items():
        at = _at(now, k)
        pw = profile.product_weights(
            h, at, weights=ad_settings.EVENT_WEIGHTS, half_life_days=ad_settings.RECENCY_HALF_LIFE_DAYS
        )
        acc = None
        for pid, w in pw.items():
            v = vectors.get(pid)
            if v is not None:
                acc = v * w if acc is None else acc + v * w
        for e in h:
            v = queries.get(e.query) if e.kind == "search" else None
            if v is not None:
                w = profile.event_weight(
                    e.kind,
                    e.occurred_at,
                    at,
                    weights=ad_settings.EVENT_WEIGHTS,
                    half_life_days=ad_settings.RECENCY_HALF_LIFE_DAYS,
                )
                acc = v * w if acc is None else acc + v * w
        if acc is not None and (unit := _normalise(acc)) is not None:
            out[k] = unit
    return out


def blend_vectors(text: dict, mean: dict, *, text_weight: float) -> dict[object, np.ndarray]:
    """Normalised mix ``text_weight * text + (1 - text_weight) * mean`` (either alone if the other is missing)."""
    out = {}
    for k in set(text) | set(mean):
        parts = [(text_weight, text.get(k)), (1.0 - text_weight, mean.get(k))]
        acc = sum(w * v for w, v in parts if v is not None)
        if (unit := _normalise(np.asarray(acc, dtype=np.float32))) is not None:
            out[k] = unit
    return out


def compute_vectors(
    histories: dict[object, list[profile.Event]],
    *,
    now: dt.datetime,
    encoder: Encoder,
    method: str,
    vectors: dict,
    text_weight: float | None = None,
) -> dict[object, np.ndarray | None]:
    """Interest vector of each history (None for an empty one) by 'text', 'mean' or 'blend'."""
    if method not in METHODS:
        raise ValueError(f"INTEREST_METHOD must be one of {METHODS}, not {method!r}")
    text = text_vectors(histories, now=now, encoder=encoder) if method in ("text", "blend") else {}
    mean = (
        mean_vectors(histories, now=now, vectors=vectors, queries=query_vectors(histories, encoder=encoder))
        if method in ("mean", "blend")
        else {}
    )
    if method == "text":
        found = text
    elif method == "mean":
        found = mean
    else:
        alpha = ad_settings.INTEREST_BLEND_TEXT_WEIGHT if text_weight is None else text_weight
        found = blend_vectors(text, mean, text_weight=alpha)
    return {k: found.get(k) for k in histories}


def _compute_for_shoppers(shopper_ids: list[int], *, encoder: Encoder, now: dt.datetime) -> dict[int, tuple]:
    events = recent_events(shopper_ids=shopper_ids, limit_per_shopper=ad_settings.PROFILE_MAX_EVENTS)
    pids = {e.product_id for evs in events.values() for e in evs}
    labels = product_labels(pids)
    vecs = product_vectors(pids)
    missing = [pid for pid in pids if pid is not None and pid not in vecs and pid in labels]
    if missing:  # products never embedded (new, or their task has not run): embed them now
        from adengine.services.products import embed_products

        embed_products(product_ids=missing, encoder=encoder)
        vecs.update(product_vectors(missing))
    histories = {sid: to_profile_events(evs, labels) for sid, evs in events.items()}
    vectors = compute_vectors(histories, now=now, encoder=encoder, method=ad_settings.INTEREST_METHOD, vectors=vecs)
    from adengine.services import interest_model  # it reads the evaluation selectors, which read this module

    model = interest_model.active_model()
    hybrids = (
        interest_model.hybrid_vectors_for(
            {sid: v for sid, v in vectors.items() if v is not None}, model=model, now=now, events=events
        )
        if model is not None
        else {}
    )
    version = model.version if model is not None else ""
    return {sid: (vectors[sid], len(events[sid]), hybrids.get(sid), version) for sid in shopper_ids}


def refresh_interests(
    *,
    batch_size: int | None = None,
    encoder: Encoder | None = None,
    limit: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict:
    """Recompute the interest vectors of consenting shoppers with behaviour since their last refresh.

    Safe to run twice or concurrently: a second concurrent run returns at once (advisory lock), and
    a run with nothing stale writes nothing. Each vector records the ``last_event_at`` it saw, so
    behaviour that arrives during the run leaves the shopper stale for the next run.
    """
    encoder = encoder or get_encoder()
    batch_size = batch_size or ad_settings.REFRESH_BATCH_SIZE
    tag = method_tag(encoder)
    done = cleared = 0
    with try_advisory_lock(_REFRESH_LOCK) as got:
        if not got:
            return {"refreshed": 0, "cleared": 0, "skipped": "another refresh is running"}
        last_id = 0
        while limit is None or done + cleared < limit:
            rows = list(
                stale_shoppers(tag=tag)
                .filter(pk__gt=last_id)
                .order_by("pk")
                .values_list("pk", "last_event_at")[:batch_size]
            )
            if not rows:
                break
            last_id = rows[-1][0]
            now = timezone.now()
            results = _compute_for_shoppers([pk for pk, _ in rows], encoder=encoder, now=now)
            with transaction.atomic():
                for pk, seen_at in rows:
                    vec, n, hybrid_vec, version = results[pk]
                    # personalisation=True again: consent withdrawn during the run wins
                    Shopper.objects.filter(pk=pk, personalisation=True).update(
                        interest_vector=vec,
                        interest_hybrid=hybrid_vec,
                        interest_hybrid_model=version if hybrid_vec is not None else "",
                        interest_source_at=seen_at,
                        interest_model=tag if vec is not None else "",
                        interest_events=n if vec is not None else 0,
                        interest_updated_at=now,
                    )
                    if vec is None:
                        cleared += 1
                    else:
                        done += 1
            if progress:
                progress(len(rows))
    return {"refreshed": done, "cleared": cleared}


def mark_all_stale() -> int:
    """Make every shopper's interests due for recomputation (after a model switch)."""
    return Shopper.objects.filter(last_event_at__isnull=False).update(interest_source_at=None)
