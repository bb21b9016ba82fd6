"""The shoppers' vector indexes during a refresh that rewrites most shoppers: load first, then build the index.

Every refreshed shopper is a new row version that PostgreSQL inserts into both half-precision HNSW graphs of the
shopper table (``Shopper.Meta.indexes``, migration 0021); at a million shoppers those inserts, not the computing,
set the pace of a refresh (BENCHMARKS.md, "Incremental refresh"). When a refresh rewrites a large share of the
indexed shoppers (a new encoder or interest method makes every vector stale), it is cheaper to drop the two indexes,
write the vectors, and build the indexes again, as pgvector advises for bulk loads. Both steps are concurrent
(``DROP/CREATE INDEX CONCURRENTLY``): no reader or writer of the shopper table waits on them. What reads these
indexes is the audience search (``selectors.audience``); while they are absent it scans the table, exactly and more
slowly. The decision path reads a shopper by its key and never uses them.
"""

from __future__ import annotations

import logging
import time

from django.db import connection

from adengine.conf import settings as ad_settings
from adengine.db import try_advisory_lock
from adengine.models import InterestRefreshChunk, Shopper

log = logging.getLogger(__name__)

_INDEX_LOCK = 0x61646569  # "adei": pg advisory lock id of dropping / building the shopper vector indexes


def vector_indexes() -> list:
    """The shopper table's vector indexes as the model (and its migrations) define them."""
    return [ix for ix in Shopper._meta.indexes if type(ix).__name__ == "HnswIndex"]


def index_states() -> dict[str, str]:
    """Each vector index's state in the database: 'valid', 'invalid' (a concurrent build that failed or is still
    running) or 'missing'."""
    names = [ix.name for ix in vector_indexes()]
    with connection.cursor() as cur:
        cur.execute(
            "SELECT c.relname, i.indisvalid AND i.indisready FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = %s::regclass AND c.relname = ANY(%s)",
            [Shopper._meta.db_table, names],
        )
        found = dict(cur.fetchall())
    return {name: ("missing" if name not in found else "valid" if found[name] else "invalid") for name in names}


EXACT_COUNT_BELOW = 100_000  # shoppers: below this a count is cheap (well under a second)


def indexed_shoppers() -> int:
    """How many shoppers the vector indexes hold (or would hold): shoppers with an interest vector. On a large table
    the planner's estimate (rows x non-null share of the column, from the last ANALYZE), since the refresh asks
    after every chunk and a count scans the table (2.6 s at 1,000,000 shoppers); on a small one the exact count."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT c.reltuples * (1 - coalesce(s.null_frac, 0)) FROM pg_class c LEFT JOIN pg_stats s "
            "ON s.schemaname = c.relnamespace::regnamespace::text AND s.tablename = c.relname "
            "AND s.attname = 'interest_vector' WHERE c.oid = %s::regclass",
            [Shopper._meta.db_table],
        )
        estimate = cur.fetchone()[0]
    if estimate is not None and estimate >= EXACT_COUNT_BELOW:
        return round(estimate)
    return Shopper.objects.filter(interest_vector__isnull=False).count()


def bulk_load_due(stale: int, *, indexed: int | None = None) -> bool:
    """Whether a refresh of ``stale`` shoppers is cheaper with the vector indexes dropped and built again.

    Yes when it rewrites at least INTEREST_REBUILD_SHARE of the indexed shoppers and at least
    INTEREST_REBUILD_MIN_SHOPPERS of them (below that an incremental refresh is short anyway)."""
    share, least = ad_settings.INTEREST_REBUILD_SHARE, int(ad_settings.INTEREST_REBUILD_MIN_SHOPPERS)
    if share is None or stale < max(least, 1):
        return False
    indexed = indexed_shoppers() if indexed is None else indexed
    return stale >= float(share) * max(indexed, 1)


def open_refresh_shoppers(*, now=None) -> int:
    """Stale shoppers held by refresh chunks still open (queued or running, within their claim)."""
    import datetime as dt

    from django.db.models import Sum
    from django.utils import timezone

    now = now or timezone.now()
    claim = dt.timedelta(seconds=float(ad_settings.INTEREST_REFRESH_CLAIM_SECONDS))
    open_chunks = InterestRefreshChunk.objects.filter(finished_at__isnull=True, queued_at__gt=now - claim)
    return int(open_chunks.aggregate(n=Sum("planned"))["n"] or 0)


def rebuild_due(*, now=None) -> bool:
    """Whether the vector indexes should be built now: one is not valid, and what the open refresh chunks still
    have to write is no longer a bulk load (``bulk_load_due``)."""
    if all(state == "valid" for state in index_states().values()):
        return False
    return not bulk_load_due(open_refresh_shoppers(now=now))


def drop_vector_indexes() -> list[str]:
    """Drop the shopper vector indexes (``DROP INDEX CONCURRENTLY``), before a bulk refresh; returns those dropped.
    Must run outside a transaction."""
    dropped = []
    if connection.in_atomic_block:  # a concurrent drop cannot run in a transaction: the refresh pays the inserts
        log.warning("shopper vector indexes not dropped for a bulk refresh: called inside a transaction")
        return []
    with try_advisory_lock(_INDEX_LOCK) as got:
        if not got:  # a build is running: leave it be (the refresh then pays the inserts)
            return []
        states = index_states()
        with connection.schema_editor(atomic=False) as editor:
            for index in vector_indexes():
                if states[index.name] != "missing":
                    editor.remove_index(Shopper, index, concurrently=True)
                    dropped.append(index.name)
    if dropped:
        log.info("shopper vector indexes dropped for a bulk interest refresh: %s", dropped)
    return dropped


def build_vector_index(*, memory: str | None = None) -> dict | None:
    """Build the first shopper vector index that is not valid (``CREATE INDEX CONCURRENTLY``, its definition the
    model's); a failed earlier build (left invalid) is dropped first. Returns what was built and how long it took,
    None when every index is valid or another process is building one. Must run outside a transaction.

    The build gets INTEREST_INDEX_BUILD_MEMORY of ``maintenance_work_mem`` for this session only (an HNSW graph that
    does not fit is built on disk, many times slower); its parallel workers are the server's
    ``max_parallel_maintenance_workers``."""
    if connection.in_atomic_block:
        raise RuntimeError("a shopper vector index is built concurrently, which cannot run inside a transaction")
    with try_advisory_lock(_INDEX_LOCK) as got:
        if not got:
            return None
        states = index_states()
        todo = [ix for ix in vector_indexes() if states[ix.name] != "valid"]
        if not todo:
            return None
        index = todo[0]
        memory = memory or ad_settings.INTEREST_INDEX_BUILD_MEMORY
        started = time.perf_counter()
        with connection.cursor() as cur:
            if memory:
                cur.execute("SELECT set_config('maintenance_work_mem', %s, false)", [str(memory)])
        try:
            with connection.schema_editor(atomic=False) as editor:
                if states[index.name] == "invalid":
                    editor.remove_index(Shopper, index, concurrently=True)
                editor.add_index(Shopper, index, concurrently=True)
        finally:
            with connection.cursor() as cur:
                cur.execute("RESET maintenance_work_mem")
        seconds = round(time.perf_counter() - started, 1)
    log.info("shopper vector index %s built in %.1f s", index.name, seconds)
    return {"index": index.name, "seconds": seconds, "left": len(todo) - 1}
