"""The refresh and the shoppers' vector indexes: a vector that did not change is not rewritten (its row's update can
stay off the HNSW indexes), and a refresh that rewrites most shoppers drops both indexes, writes, and builds them
again concurrently with the model's definition."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from django.db import connection
from django.utils import timezone

from adengine import queues
from adengine.models import InterestRefreshChunk, Shopper
from adengine.models.events import HYBRID_DIMENSIONS, VECTOR_DIMENSIONS
from adengine.services import interest_indexes, interests
from adengine.services.interest_indexes import build_vector_index, bulk_load_due, index_states
from adengine.tasks import build_interest_index, refresh_interest_chunk
from adengine.tasks import refresh_interests as coordinator
from tests.conftest import adengine_settings
from tests.factories import EventFactory, ProductFactory, ShopperFactory

NAMES = ["adengine_shopper_interest_half", "adengine_shopper_hybrid_half"]


def _definitions() -> dict[str, str]:
    with connection.cursor() as cur:
        cur.execute(
            "SELECT c.relname, pg_get_indexdef(c.oid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE c.relname = ANY(%s)",
            [NAMES],
        )
        return dict(cur.fetchall())


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal(n).astype(np.float32)
    return v / np.linalg.norm(v)


def _tuples() -> tuple[int, int]:
    """Rows updated and rows updated in place (HOT) in the shopper table by this transaction so far."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT pg_stat_get_xact_tuples_updated(%s::regclass), pg_stat_get_xact_tuples_hot_updated(%s::regclass)",
            [Shopper._meta.db_table] * 2,
        )
        return cur.fetchone()


@pytest.mark.django_db
def test_a_vector_that_did_not_change_is_not_rewritten_and_one_that_did_is():
    # given three shoppers with stored content and hybrid vectors, each row alone on its page (an update in place
    # needs room on the row's page: a busy table gets it from VACUUM, here from a fillfactor rolled back with the test)
    with connection.cursor() as cur:
        cur.execute(f"ALTER TABLE {Shopper._meta.db_table} SET (fillfactor = 10)")
    rng = np.random.default_rng(3)
    vectors = [(_unit(rng, VECTOR_DIMENSIONS), 2 * _unit(rng, HYBRID_DIMENSIONS)) for _ in range(3)]
    shoppers = [ShopperFactory(interest_vector=v, interest_hybrid=h) for v, h in vectors]
    stored = {s.pk: v for s, v in zip(shoppers, vectors, strict=True)}
    # when a refresh computes for the first two vectors within float noise of the stored ones (1e-8 per component:
    # another summation order) and for the third a vector that moved (one more event)
    noise = 1e-8 * np.where(rng.random(VECTOR_DIMENSIONS) < 0.5, -1.0, 1.0).astype(np.float32)
    results = {s.pk: (stored[s.pk][0] + noise, 4, stored[s.pk][1] * np.float32(1 + 1e-8), "m1") for s in shoppers[:2]}
    moved = _unit(rng, VECTOR_DIMENSIONS)
    results[shoppers[2].pk] = (moved, 5, 2 * _unit(rng, HYBRID_DIMENSIONS), "m1")
    assert all(not np.array_equal(results[s.pk][0], stored[s.pk][0]) for s in shoppers)  # not the same bits
    now = timezone.now()
    before = _tuples()
    interests._write_vectors([(s.pk, now) for s in shoppers], results, tag="t:mean", now=now)
    updated, hot = (a - b for a, b in zip(_tuples(), before, strict=True))
    # then all three are marked refreshed, the first two keep their stored vectors bit for bit, the third has the new
    rows = {s.pk: s for s in Shopper.objects.filter(pk__in=stored)}
    assert all(rows[pk].interest_model == "t:mean" and rows[pk].interest_source_at == now for pk in stored)
    for s in shoppers[:2]:
        np.testing.assert_array_equal(np.asarray(rows[s.pk].interest_vector, np.float32), stored[s.pk][0])
        np.testing.assert_array_equal(np.asarray(rows[s.pk].interest_hybrid, np.float32), stored[s.pk][1])
        assert rows[s.pk].interest_events == 4
    np.testing.assert_array_equal(np.asarray(rows[shoppers[2].pk].interest_vector, np.float32), moved)
    # and PostgreSQL could update the unchanged rows in place (HOT: no new entry in either HNSW index); the moved
    # one was inserted into the indexes again
    assert (updated, hot) == (3, 2)


@pytest.mark.django_db
def test_behaviour_updates_its_shopper_in_place_off_both_graphs():
    from adengine.services.behaviour import record_event

    # given four shoppers with both vectors (in both HNSW graphs), written one after the other as a shop's are
    rng = np.random.default_rng(5)
    shoppers = [
        ShopperFactory(interest_vector=_unit(rng, VECTOR_DIMENSIONS), interest_hybrid=2 * _unit(rng, HYBRID_DIMENSIONS))
        for _ in range(4)
    ]
    product = ProductFactory()
    before = _tuples()
    # when the first and the last of them view a product (at about 1.7 kB a row, three share the first page, which
    # keeps room for one new version; one transaction here, so a second version on that page would find no room: in
    # production each event commits apart and the page's dead version is pruned)
    for shopper in (shoppers[0], shoppers[3]):
        record_event(shopper=shopper, kind="view", product=product, trigger_refresh=False)
    # then both updates of their rows (last_event_at) were made in place: no index entry written, neither graph's
    updated, hot = (after - b for after, b in zip(_tuples(), before, strict=True))
    assert (updated, hot) == (2, 2)
    assert all(s.last_event_at is not None for s in Shopper.objects.filter(pk__in=[shoppers[0].pk, shoppers[3].pk]))
    # because no index of the table reads the column, and its pages keep room for a new version of a row
    with connection.cursor() as cur:
        cur.execute(
            "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i WHERE i.indrelid = %s::regclass",
            [Shopper._meta.db_table],
        )
        definitions = [row[0] for row in cur.fetchall()]
        cur.execute("SELECT reloptions FROM pg_class WHERE oid = %s::regclass", [Shopper._meta.db_table])
        options = cur.fetchone()[0] or []
    assert len(definitions) >= 4 and not [d for d in definitions if "last_event_at" in d]
    assert "fillfactor=75" in options


def test_a_bulk_load_is_a_large_share_of_the_indexed_shoppers_and_not_a_small_refresh():
    with adengine_settings(INTEREST_REBUILD_SHARE=0.5, INTEREST_REBUILD_MIN_SHOPPERS=50):
        assert bulk_load_due(60, indexed=100)
        assert bulk_load_due(60, indexed=0)  # a first refresh: nothing indexed yet
        assert not bulk_load_due(40, indexed=100)  # most shoppers keep their vectors: pay the inserts
        assert not bulk_load_due(49, indexed=60)  # too few to be worth dropping the audience's index
    with adengine_settings(INTEREST_REBUILD_SHARE=None):
        assert not bulk_load_due(10**6, indexed=10)


@pytest.fixture
def indexes_restored():
    """Whatever a test does to the vector indexes, the next tests find them built."""
    yield
    while build_vector_index() is not None:
        pass
    assert set(index_states().values()) == {"valid"}


def _stale(n: int) -> list[int]:
    products = ProductFactory.create_batch(3)
    ids = []
    for i in range(n):
        shopper = ShopperFactory()
        at = timezone.now() - dt.timedelta(hours=i + 1)
        EventFactory(shopper=shopper, product=products[i % 3], occurred_at=at)
        EventFactory(shopper=shopper, product=products[(i + 1) % 3], occurred_at=at - dt.timedelta(days=1))
        Shopper.objects.filter(pk=shopper.pk).update(last_event_at=at)
        ids.append(shopper.pk)
    return ids


@pytest.mark.django_db(transaction=True)
def test_a_bulk_refresh_drops_the_indexes_writes_the_vectors_and_builds_the_same_indexes_again(
    encoder, monkeypatch, indexes_restored
):
    # given six stale shoppers, a bulk load from four on, chunks of two, and the indexes as the migrations built them
    ids = _stale(6)
    definitions = _definitions()
    assert sorted(definitions) == sorted(NAMES) and set(index_states().values()) == {"valid"}
    sent: list[tuple[str, dict | None]] = []
    monkeypatch.setattr(queues, "enqueue_after_commit", lambda name, **kw: sent.append((name, kw.get("kwargs"))))
    with adengine_settings(INTEREST_REBUILD_MIN_SHOPPERS=4, INTEREST_REBUILD_SHARE=0.5, INTEREST_REFRESH_CHUNK_SIZE=2):
        # when the coordinator plans the refresh
        result = coordinator.apply().get()
        # then it dropped both indexes before queueing the three chunks
        assert result == {"chunks": 3, "dropped": NAMES}
        assert index_states() == dict.fromkeys(NAMES, "missing")
        chunks = [kw["chunk_id"] for name, kw in sent if name == "adengine.refresh_interest_chunk"]
        assert len(chunks) == 3 and len(sent) == 3
        # when the chunks run: while four shoppers are left to write it is still a bulk load, no build is queued
        refresh_interest_chunk.apply(kwargs={"chunk_id": chunks[0]}).get()
        assert len(sent) == 3
        # once two are left, the chunk that finished queues the build
        refresh_interest_chunk.apply(kwargs={"chunk_id": chunks[1]}).get()
        assert sent[3:] == [("adengine.build_interest_index", None)]
        refresh_interest_chunk.apply(kwargs={"chunk_id": chunks[2]}).get()
        assert InterestRefreshChunk.objects.filter(finished_at__isnull=True).count() == 0
        # and the build task builds one index, queues itself for the other, which it builds too
        assert build_interest_index.apply().get()["left"] == 1
        assert sent[-1] == ("adengine.build_interest_index", None)
        assert build_interest_index.apply().get()["left"] == 0
        assert build_interest_index.apply().get() is None  # nothing left
    # then both indexes are valid, with the definition the migrations gave them
    assert index_states() == dict.fromkeys(NAMES, "valid")
    assert _definitions() == definitions
    # and every shopper has the vector an ordinary refresh gives it: refreshed again with the indexes in place,
    # nothing moves
    written = dict(Shopper.objects.filter(pk__in=ids).values_list("pk", "interest_vector"))
    assert len(written) == 6 and all(v is not None for v in written.values())
    Shopper.objects.filter(pk__in=ids).update(interest_source_at=None)
    assert interests.refresh_shoppers(encoder=encoder)["refreshed"] == 6
    for pk, vec in Shopper.objects.filter(pk__in=ids).values_list("pk", "interest_vector"):
        np.testing.assert_allclose(np.asarray(vec), np.asarray(written[pk]), rtol=1e-5, atol=1e-6)


@pytest.mark.django_db(transaction=True)
def test_a_refresh_of_most_shoppers_in_one_process_also_builds_the_indexes_after_writing(
    encoder, monkeypatch, indexes_restored
):
    # given four stale shoppers, a bulk load from four on (as after a new encoder: reembed_all, adengine_embed)
    ids = _stale(4)
    definitions = _definitions()
    dropped_while_writing = []
    write = interests._write_vectors

    def watching(*args, **kw):
        dropped_while_writing.append(set(index_states().values()) == {"missing"})
        return write(*args, **kw)

    monkeypatch.setattr(interests, "_write_vectors", watching)
    with adengine_settings(INTEREST_REBUILD_MIN_SHOPPERS=4, INTEREST_REBUILD_SHARE=0.5):
        result = interests.refresh_interests(encoder=encoder)
    # then the vectors were written with the indexes absent, and the same indexes are back and valid
    assert result == {"refreshed": 4, "cleared": 0} and dropped_while_writing == [True]
    assert Shopper.objects.filter(pk__in=ids, interest_vector__isnull=False).count() == 4
    assert index_states() == dict.fromkeys(NAMES, "valid") and _definitions() == definitions


@pytest.mark.django_db(transaction=True)
def test_a_small_refresh_keeps_the_indexes_and_a_failed_build_is_built_again(encoder, monkeypatch, indexes_restored):
    ids = _stale(3)
    sent: list = []
    monkeypatch.setattr(queues, "enqueue_after_commit", lambda name, **kw: sent.append((name, kw.get("kwargs"))))
    # given the default settings, three stale shoppers are an incremental refresh: the indexes stay
    assert coordinator.apply().get() == {"chunks": 1}
    assert index_states() == dict.fromkeys(NAMES, "valid")
    refresh_interest_chunk.apply(kwargs={"chunk_id": sent[0][1]["chunk_id"]}).get()
    assert Shopper.objects.filter(pk__in=ids, interest_vector__isnull=False).count() == 3
    assert len(sent) == 1  # no build queued
    # given a concurrent build that failed (PostgreSQL leaves such an index invalid)
    definitions = _definitions()
    with connection.cursor() as cur:
        cur.execute("UPDATE pg_index SET indisvalid = false WHERE indexrelid = %s::regclass", [NAMES[1]])
    assert index_states()[NAMES[1]] == "invalid"
    # when the coordinator finds nothing to refresh, it queues a build, which drops the invalid index and builds it
    assert coordinator.apply().get() == {"chunks": 0}
    assert sent[-1] == ("adengine.build_interest_index", None)
    assert build_interest_index.apply().get() == {"index": NAMES[1], "seconds": pytest.approx(0, abs=60), "left": 0}
    assert index_states() == dict.fromkeys(NAMES, "valid") and _definitions() == definitions


@pytest.mark.django_db(transaction=True)
def test_the_build_takes_the_memory_setting_for_its_session_only(monkeypatch, indexes_restored):
    # given a missing index
    interest_indexes.drop_vector_indexes()
    seen = []
    add_index = connection.schema_editor().__class__.add_index

    def spy(editor, model, index, **kw):
        with connection.cursor() as cur:
            cur.execute("SHOW maintenance_work_mem")
            seen.append(cur.fetchone()[0])
        return add_index(editor, model, index, **kw)

    monkeypatch.setattr(connection.schema_editor().__class__, "add_index", spy)
    with adengine_settings(INTEREST_INDEX_BUILD_MEMORY="96MB"):
        build_vector_index()
    # then it was built with that memory, and the session is back to the server's setting
    assert seen == ["96MB"]
    with connection.cursor() as cur:
        cur.execute("SHOW maintenance_work_mem")
        assert cur.fetchone()[0] != "96MB"


@pytest.mark.django_db
def test_the_indexed_shoppers_are_counted_on_a_small_table_and_estimated_on_a_large_one(monkeypatch):
    rng = np.random.default_rng(5)
    for _ in range(5):
        ShopperFactory(interest_vector=_unit(rng, VECTOR_DIMENSIONS))
    ShopperFactory()  # no vector: not in the indexes
    exact = Shopper.objects.filter(interest_vector__isnull=False).count()
    assert interest_indexes.indexed_shoppers() == exact
    # on a large table the planner's estimate stands in for the count (which would scan the table)
    with connection.cursor() as cur:
        cur.execute(f"ANALYZE {Shopper._meta.db_table}")
    monkeypatch.setattr(interest_indexes, "EXACT_COUNT_BELOW", 1)
    calls = []
    monkeypatch.setattr(Shopper.objects, "filter", lambda *a, **kw: calls.append(1))  # no count
    assert interest_indexes.indexed_shoppers() == exact and calls == []


@pytest.mark.django_db
def test_inside_a_transaction_the_indexes_are_neither_dropped_nor_built():
    # DROP / CREATE INDEX CONCURRENTLY cannot run in a transaction: the refresh then pays the inserts
    assert interest_indexes.drop_vector_indexes() == []
    assert index_states() == dict.fromkeys(NAMES, "valid")
    with pytest.raises(RuntimeError, match="inside a transaction"):
        build_vector_index()
