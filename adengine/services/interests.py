"""Interest vectors: one unit vector per consenting shopper, refreshed incrementally."""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Callable, Iterable

import numpy as np
from django.db import connection, models, transaction
from django.utils import timezone
from scipy import sparse

from adengine.adapters import get_adapter
from adengine.conf import settings as ad_settings
from adengine.db import try_advisory_lock
from adengine.ml import profile
from adengine.ml.encoder import Encoder, get_encoder
from adengine.models import BehaviourEvent, InterestRefreshChunk, ProductVector, QueryVector, Shopper
from adengine.models.events import HYBRID_DIMENSIONS, VECTOR_DIMENSIONS
from adengine.selectors.shoppers import recent_event_rows, stale_shoppers

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


_PRODUCT_CACHE: dict = {}  # product pk -> (updated_at, vector): a worker reads each product's vector once
PRODUCT_CACHE_SIZE = 50_000


def product_vectors(product_ids: Iterable) -> dict:
    """Stored vectors of the given products (read again only when a product's vector was rewritten since)."""
    ids = {pk for pk in product_ids if pk is not None}
    if not ids:
        return {}
    stamps = dict(ProductVector.objects.filter(product_id__in=ids).values_list("product_id", "updated_at"))
    stale = [pk for pk, at in stamps.items() if _PRODUCT_CACHE.get(pk, (None,))[0] != at]
    if stale:
        if len(_PRODUCT_CACHE) + len(stale) > PRODUCT_CACHE_SIZE:
            _PRODUCT_CACHE.clear()
            stale = list(stamps)
        for pk, at, v in ProductVector.objects.filter(product_id__in=stale).values_list(
            "product_id", "updated_at", "embedding"
        ):
            _PRODUCT_CACHE[pk] = (at, np.asarray(v, dtype=np.float32))
    return {pk: _PRODUCT_CACHE[pk][1] for pk in stamps if pk in _PRODUCT_CACHE}


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


_QUERY_CACHE: dict[tuple[str, str], np.ndarray] = {}
QUERY_CACHE_SIZE = 100_000  # encoded searches kept per process (384 floats each: about 150 MB when full)


def query_vectors(histories: dict[object, list[profile.Event]], *, encoder: Encoder | None) -> dict[str, np.ndarray]:
    """Encoded search queries of the histories (each distinct query once; none without an encoder).

    The encoder is by far the slowest part of a refresh, so it sees only text never encoded before by this encoder:
    a query is looked up in this process's cache, then in the stored query vectors every worker shares
    (``QueryVector``), and only the rest is encoded and stored."""
    texts = {e.query for h in histories.values() for e in h if e.kind == "search" and e.query}
    return encoded_queries(texts, encoder=encoder)


def encoded_queries(texts: Iterable[str], *, encoder: Encoder | None) -> dict[str, np.ndarray]:
    """The vectors of the given search texts, each encoded at most once by this encoder (``query_vectors``)."""
    queries = sorted({q for q in texts if q})
    if not queries or encoder is None:
        return {}
    version = encoder.version
    missing = [q for q in queries if (version, q) not in _QUERY_CACHE]
    if missing:
        if len(_QUERY_CACHE) + len(missing) > QUERY_CACHE_SIZE:
            _QUERY_CACHE.clear()
        stored = dict(
            QueryVector.objects.filter(encoder_version=version, query__in=missing).values_list("query", "embedding")
        )
        new = [q for q in missing if q not in stored]
        if new:
            encoded = dict(zip(new, encoder.encode_queries(new), strict=True))
            QueryVector.objects.bulk_create(
                [QueryVector(encoder_version=version, query=q, embedding=v) for q, v in encoded.items()],
                ignore_conflicts=True,  # another worker stored the same text meanwhile: same vector
            )
            stored.update(encoded)
        _QUERY_CACHE.update(((version, q), np.asarray(v, np.float32)) for q, v in stored.items())
    return {q: _QUERY_CACHE[(version, q)] for q in queries}


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


def row_weights(rows: list[tuple], *, now: dt.datetime) -> np.ndarray:
    """``profile.event_weight`` of every ``recent_event_rows`` row at once (EVENT_WEIGHTS of its kind, halved every
    RECENCY_HALF_LIFE_DAYS of age)."""
    kinds = ad_settings.EVENT_WEIGHTS
    weight = np.array([float(kinds.get(r[1], 1.0)) for r in rows], np.float64)
    seconds = now.timestamp() - np.array([r[4].timestamp() for r in rows], np.float64)
    return weight * 0.5 ** ((np.maximum(seconds, 0.0) / 86400.0) / float(ad_settings.RECENCY_HALF_LIFE_DAYS))


def mean_vectors_from_rows(
    rows: list[tuple], shopper_ids: list, *, now: dt.datetime, vectors: dict, queries: dict[str, np.ndarray]
) -> dict[object, np.ndarray]:
    """``mean_vectors`` of a whole batch at once from its ``recent_event_rows``: the recency weights of each shopper's
    products and searches as two sparse (shoppers x products / texts) matrices times the stacked vectors, then every
    row normalised; shoppers with nothing to average are left out. Equal to ``mean_vectors`` within float rounding
    (the weights are summed in float64 rather than added to a float32 vector one by one)."""
    if not rows:
        return {}
    index = {sid: i for i, sid in enumerate(shopper_ids)}
    weights = row_weights(rows, now=now)
    # per part: the column of each product / text, then (row, column, weight) of each event that counts
    parts: dict[str, tuple[dict, dict, list, list, list]] = {
        "product": (vectors, {}, [], [], []),
        "search": (queries, {}, [], [], []),
    }
    for (sid, kind, pid, query, _), w in zip(rows, weights, strict=True):
        for name, key in (("product", pid), ("search", query if kind == "search" else None)):
            source, columns, r, c, ws = parts[name]
            if key is not None and key in source:
                r.append(index[sid])
                c.append(columns.setdefault(key, len(columns)))
                ws.append(w)
    acc = None
    seen = np.zeros(len(shopper_ids), bool)
    for source, columns, r, c, ws in parts.values():
        if not columns:
            continue
        m = sparse.csr_matrix((np.asarray(ws), (r, c)), shape=(len(shopper_ids), len(columns)))
        stacked = np.stack([np.asarray(source[key], np.float32) for key in columns])
        term = np.asarray(m @ stacked, np.float64)
        acc = term if acc is None else acc + term
        seen[r] = True
    if acc is None:
        return {}
    norms = np.linalg.norm(acc, axis=1)
    keep = np.flatnonzero(seen & (norms > 1e-9))
    unit = (acc[keep] / norms[keep, None]).astype(np.float32)
    return {shopper_ids[i]: unit[j] for j, i in enumerate(keep)}


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
    """(content vector, events seen, hybrid vector, model version) of each shopper of a batch.

    The batch's events are read as plain rows in one query; with the 'mean' method (the default) the content
    vectors and the fold-in weights are sums over those rows done by numpy for the whole batch, and the encoder
    sees only search texts never encoded before (``encoded_queries``). 'text' and 'blend' build each shopper's
    behaviour text and encode it, as before."""
    rows = recent_event_rows(shopper_ids=shopper_ids, limit_per_shopper=ad_settings.PROFILE_MAX_EVENTS)
    counts = Counter(r[0] for r in rows)
    pids = {r[2] for r in rows if r[2] is not None}
    method = ad_settings.INTEREST_METHOD
    vecs = product_vectors(pids)
    # labels (a read of the host's products through the adapter) only for the text, and for products without a vector
    labels = product_labels(pids if method in ("text", "blend") else {p for p in pids if p not in vecs})
    missing = [pid for pid in pids if pid not in vecs and pid in labels]
    if missing:  # products never embedded (new, or their task has not run): embed them now
        from adengine.services.products import embed_products

        embed_products(product_ids=missing, encoder=encoder)
        vecs.update(product_vectors(missing))
    if method == "mean":
        queries = encoded_queries((r[3] for r in rows if r[1] == "search"), encoder=encoder)
        found = mean_vectors_from_rows(rows, shopper_ids, now=now, vectors=vecs, queries=queries)
        vectors = {sid: found.get(sid) for sid in shopper_ids}
    else:
        histories: dict[int, list[profile.Event]] = {sid: [] for sid in shopper_ids}
        for sid, kind, pid, query, at in rows:
            histories[sid].append(
                profile.Event(kind=kind, occurred_at=at, product_id=pid, product_label=labels.get(pid, ""), query=query)
            )
        vectors = compute_vectors(histories, now=now, encoder=encoder, method=method, vectors=vecs)
    from adengine.services import interest_model  # it reads the evaluation selectors, which read this module

    model = interest_model.active_model()
    hybrids = (
        interest_model.hybrid_vectors_from_rows(
            {sid: v for sid, v in vectors.items() if v is not None}, model=model, now=now, rows=rows
        )
        if model is not None
        else {}
    )
    version = model.version if model is not None else ""
    return {sid: (vectors[sid], counts.get(sid, 0), hybrids.get(sid), version) for sid in shopper_ids}


_VECTOR_TYPE: dict = {}  # database -> pgvector's type info (its oid), fetched once per process


def _vector_cursor():
    """A psycopg cursor on Django's connection (same transaction) that binds parameters on the server and sends
    numpy vectors in pgvector's binary form: a batch of vectors goes as one ``vector[]`` of raw float32 bytes,
    with no float printed in Python nor parsed in PostgreSQL."""
    import psycopg
    from pgvector.psycopg.vector import register_vector_info
    from psycopg.types import TypeInfo

    connection.ensure_connection()
    raw = connection.connection
    key = (connection.alias, connection.settings_dict["NAME"])
    if key not in _VECTOR_TYPE:
        _VECTOR_TYPE[key] = TypeInfo.fetch(raw, "vector")
    cur = psycopg.Cursor(raw)
    register_vector_info(cur, _VECTOR_TYPE[key])
    return cur


# A vector that moved by at most this much (relative L2 distance) is left as stored: the row then keeps the same
# value in every indexed column, so PostgreSQL can update it in place (a HOT update, when its page has room) instead
# of inserting it into both HNSW graphs again. Any score read from it (a cosine or inner product with a vector of
# norm r) moves by at most this much times r (Cauchy-Schwarz): a thousandth of what the half-precision indexes
# already round away (2^-11 per component), and below the 1e-5 by which two exact implementations of the same
# vector differ (float32 sums in another order; tests/shoppers/test_refresh_chunks.py). A recomputation that lands
# on the stored vector within float noise rewrites no index; any real change in behaviour moves it far more.
UNCHANGED_TOLERANCE = 1e-6


def _write_vectors(rows: list[tuple[int, dt.datetime]], results: dict[int, tuple], *, tag: str, now) -> None:
    """Store a batch's interest vectors in one statement (the vectors as two binary ``vector[]`` parameters); a vector
    equal to the stored one within UNCHANGED_TOLERANCE keeps the stored value (no index insert when the page has
    room)."""
    table = Shopper._meta.db_table
    ids, seen, has_vec, has_hybrid, versions, events = [], [], [], [], [], []
    vec_rows, hybrid_rows = [], []
    zero_vec, zero_hybrid = np.zeros(VECTOR_DIMENSIONS, np.float32), np.zeros(HYBRID_DIMENSIONS, np.float32)
    for pk, seen_at in rows:
        vec, n, hybrid_vec, version = results[pk]
        ids.append(pk)
        seen.append(seen_at)
        has_vec.append(vec is not None)
        has_hybrid.append(hybrid_vec is not None)
        versions.append(version if hybrid_vec is not None else "")
        events.append(n if vec is not None else 0)
        vec_rows.append(np.asarray(vec, np.float32) if vec is not None else zero_vec)
        hybrid_rows.append(np.asarray(hybrid_vec, np.float32) if hybrid_vec is not None else zero_hybrid)
    # every branch of each CASE has the column's own type and dimensions: otherwise PostgreSQL coerces the result to
    # them, and that coercion detoasts a stored (TOASTed) vector, which then no longer compares equal to the old one
    vec_type, hybrid_type = f"vector({VECTOR_DIMENSIONS})", f"vector({HYBRID_DIMENSIONS})"
    with _vector_cursor() as cur:
        # personalisation again: consent withdrawn during the run wins
        cur.execute(
            f"""
            UPDATE {table} s SET
                interest_vector = CASE WHEN NOT v.has_vec THEN NULL::{vec_type}
                    WHEN s.interest_vector <-> v.vec <= %(tolerance)s THEN s.interest_vector ELSE v.vec::{vec_type} END,
                interest_hybrid = CASE WHEN NOT v.has_hybrid THEN NULL::{hybrid_type}
                    WHEN s.interest_hybrid <-> v.hybrid <= %(tolerance)s * vector_norm(v.hybrid) THEN s.interest_hybrid
                    ELSE v.hybrid::{hybrid_type} END,
                interest_hybrid_model = v.hybrid_model, interest_source_at = v.seen,
                interest_model = CASE WHEN v.has_vec THEN %(tag)s ELSE '' END, interest_events = v.events,
                interest_updated_at = %(now)s
            FROM unnest(%(ids)s::bigint[], %(seen)s::timestamptz[], %(has_vec)s::boolean[],
                        %(has_hybrid)s::boolean[], %(models)s::text[], %(events)s::int[],
                        %(vec)b::vector[], %(hybrid)b::vector[])
                 AS v(id, seen, has_vec, has_hybrid, hybrid_model, events, vec, hybrid)
            WHERE s.id = v.id AND s.personalisation
            """,
            {
                "tolerance": UNCHANGED_TOLERANCE,
                "vec": vec_rows,
                "hybrid": hybrid_rows,
                "tag": tag,
                "now": now,
                "ids": ids,
                "seen": seen,
                "has_vec": has_vec,
                "has_hybrid": has_hybrid,
                "models": versions,
                "events": events,
            },
        )


def refresh_shoppers(
    *,
    first_id: int | None = None,
    last_id: int | None = None,
    batch_size: int | None = None,
    encoder: Encoder | None = None,
    limit: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict:
    """Recompute the interest vectors of the stale shoppers (those with ids in [first_id, last_id] when given), in
    batches of REFRESH_BATCH_SIZE; returns how many were refreshed and cleared. Takes no lock: callers do."""
    encoder = encoder or get_encoder()
    batch_size = batch_size or ad_settings.REFRESH_BATCH_SIZE
    tag = method_tag(encoder)
    done = cleared = 0
    last = first_id - 1 if first_id is not None else 0
    while limit is None or done + cleared < limit:
        qs = stale_shoppers(tag=tag).filter(pk__gt=last)
        if last_id is not None:
            qs = qs.filter(pk__lte=last_id)
        rows = list(qs.order_by("pk").values_list("pk", "last_event_at")[:batch_size])
        if not rows:
            break
        last = rows[-1][0]
        now = timezone.now()
        results = _compute_for_shoppers([pk for pk, _ in rows], encoder=encoder, now=now)
        with transaction.atomic():
            _write_vectors(rows, results, tag=tag, now=now)
        written = sum(results[pk][0] is not None for pk, _ in rows)
        done += written
        cleared += len(rows) - written
        if progress:
            progress(len(rows))
    return {"refreshed": done, "cleared": cleared}


def refresh_interests(
    *,
    batch_size: int | None = None,
    encoder: Encoder | None = None,
    limit: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict:
    """Recompute, in this process, the interest vectors of consenting shoppers with behaviour since their last refresh
    (the management commands and the re-embedding use it; beat and workers use ``plan_refresh`` and chunks).

    Safe to run twice or concurrently: a second concurrent run returns at once (advisory lock), and
    a run with nothing stale writes nothing. Each vector records the ``last_event_at`` it saw, so
    behaviour that arrives during the run leaves the shopper stale for the next run. A run that rewrites most
    shoppers drops the vector indexes first and builds them again at the end (``interest_indexes``).
    """
    from adengine.services import interest_indexes

    with try_advisory_lock(_REFRESH_LOCK) as got:
        if not got:
            return {"refreshed": 0, "cleared": 0, "skipped": "another refresh is running"}
        # a refresh of most shoppers (after a new encoder: reembed_all) is a bulk load, as for the chunked refresh
        stale = stale_shoppers(tag=method_tag(encoder or get_encoder())).count()
        bulk = connection.get_autocommit() and interest_indexes.bulk_load_due(min(stale, limit or stale))
        dropped = interest_indexes.drop_vector_indexes() if bulk else []
        result = refresh_shoppers(batch_size=batch_size, encoder=encoder, limit=limit, progress=progress)
    if dropped:  # after a failure the coordinator builds them (interest_indexes.rebuild_due)
        while interest_indexes.build_vector_index() is not None:
            pass
    return result


def current_tag() -> str:
    """The method tag of the encoder in use, read without loading the encoder."""
    from adengine.ml.encoder import configured_version

    return f"{configured_version()[1]}:{ad_settings.INTEREST_METHOD}"


def plan_refresh(*, chunk_size: int | None = None, now: dt.datetime | None = None) -> list[int]:
    """Split the stale shoppers not held by an open chunk into chunks of INTEREST_REFRESH_CHUNK_SIZE consecutive
    stale ids and record them; returns the new chunks' ids (the coordinator task queues one task per chunk).

    Every stale shopper falls in exactly one new chunk; shoppers in chunks still open (queued or running, and
    younger than INTEREST_REFRESH_CLAIM_SECONDS) are left to them, so a coordinator that runs every minute does
    not queue the same shoppers again while a long refresh works through its chunks."""
    size = int(chunk_size or ad_settings.INTEREST_REFRESH_CHUNK_SIZE)
    if size < 1:
        raise ValueError(f"INTEREST_REFRESH_CHUNK_SIZE must be at least 1, not {size}")
    now = now or timezone.now()
    claim = dt.timedelta(seconds=float(ad_settings.INTEREST_REFRESH_CLAIM_SECONDS))
    with try_advisory_lock(_REFRESH_LOCK) as got:
        if not got:
            return []
        held = np.array(
            InterestRefreshChunk.objects.filter(finished_at__isnull=True, queued_at__gt=now - claim)
            .order_by("first_shopper")
            .values_list("first_shopper", "last_shopper"),
            dtype=np.int64,
        ).reshape(-1, 2)
        ids = np.fromiter(
            stale_shoppers(tag=current_tag()).order_by("pk").values_list("pk", flat=True).iterator(chunk_size=50_000),
            dtype=np.int64,
        )
        if len(held) and len(ids):
            # an id is held when the last chunk starting at or before it ends at or after it (chunks never overlap)
            at = np.searchsorted(held[:, 0], ids, side="right") - 1
            ids = ids[~((at >= 0) & (held[np.maximum(at, 0), 1] >= ids))]
        chunks = [
            InterestRefreshChunk(
                first_shopper=int(part[0]), last_shopper=int(part[-1]), planned=len(part), queued_at=now
            )
            for part in (ids[i : i + size] for i in range(0, len(ids), size))
        ]
        return [c.pk for c in InterestRefreshChunk.objects.bulk_create(chunks, batch_size=1000)]


def refresh_chunk(chunk_id: int, *, encoder: Encoder | None = None) -> dict | None:
    """Refresh one chunk's stale shoppers and mark it finished; None when the chunk is gone. Idempotent: a finished
    chunk is left alone, and a chunk run again refreshes only the shoppers still stale. A failure is recorded on
    the chunk and raised, for the task to retry this chunk alone."""
    chunk = InterestRefreshChunk.objects.filter(pk=chunk_id).first()
    if chunk is None:
        log.info("interest refresh chunk %s is gone", chunk_id)
        return None
    if chunk.finished_at is not None:
        return {"refreshed": 0, "cleared": 0, "skipped": "already finished"}
    InterestRefreshChunk.objects.filter(pk=chunk_id).update(
        started_at=timezone.now(), attempts=models.F("attempts") + 1
    )
    try:
        result = refresh_shoppers(first_id=chunk.first_shopper, last_id=chunk.last_shopper, encoder=encoder)
    except Exception as exc:
        InterestRefreshChunk.objects.filter(pk=chunk_id).update(error=f"{type(exc).__name__}: {exc}"[:300])
        raise
    InterestRefreshChunk.objects.filter(pk=chunk_id).update(
        finished_at=timezone.now(), error="", refreshed=result["refreshed"], cleared=result["cleared"]
    )
    return result


def mark_all_stale() -> int:
    """Make every shopper's interests due for recomputation (after a model switch)."""
    return Shopper.objects.filter(last_event_at__isnull=False).update(interest_source_at=None)
