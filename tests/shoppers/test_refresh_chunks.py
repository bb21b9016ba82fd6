"""The interest refresh at scale: a coordinator plans chunks of stale shoppers, one task per chunk refreshes them.

Every stale shopper is in exactly one chunk and refreshed once; a chunk run twice changes nothing; a failed chunk is
retried alone; the batched fold-in gives the vectors the per-shopper one gave.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from django.utils import timezone

from adengine.models import InterestRefreshChunk, Shopper
from adengine.services import interests
from adengine.services.interests import plan_refresh, refresh_chunk
from adengine.tasks import refresh_interest_chunk
from adengine.tasks import refresh_interests as coordinator
from tests.conftest import adengine_settings
from tests.factories import EventFactory, ProductFactory, ShopperFactory
from tests.shoppers.test_evaluation import imported  # noqa: F401

pytestmark = pytest.mark.django_db


def _stale(n: int, products) -> list[Shopper]:
    """``n`` consenting shoppers, each with behaviour newer than their (missing) vector."""
    out = []
    for i in range(n):
        shopper = ShopperFactory()
        at = timezone.now() - dt.timedelta(hours=i + 1)
        EventFactory(shopper=shopper, product=products[i % len(products)], occurred_at=at)
        Shopper.objects.filter(pk=shopper.pk).update(last_event_at=at)
        out.append(shopper)
    return out


@pytest.fixture
def shoppers(encoder):
    products = ProductFactory.create_batch(3)
    stale = _stale(7, products)
    ShopperFactory()  # no behaviour: nothing to refresh
    Shopper.objects.filter(pk=_stale(1, products)[0].pk).update(personalisation=False)  # consent withdrawn
    return stale


def _members(chunk: InterestRefreshChunk, ids: list[int]) -> set[int]:
    return {pk for pk in ids if chunk.first_shopper <= pk <= chunk.last_shopper}


def test_the_plan_puts_every_stale_shopper_in_exactly_one_chunk(shoppers):
    # when the coordinator plans with chunks of three
    planned = plan_refresh(chunk_size=3)
    # then seven stale shoppers (not the one without behaviour, not the one without consent) make 3 chunks
    chunks = list(InterestRefreshChunk.objects.filter(pk__in=planned).order_by("first_shopper"))
    ids = [s.pk for s in shoppers]
    assert [c.planned for c in chunks] == [3, 3, 1]
    assert all(len([c for c in chunks if pk in _members(c, ids)]) == 1 for pk in ids)
    assert all(a.last_shopper < b.first_shopper for a, b in zip(chunks, chunks[1:], strict=False))
    # and a second plan while they are open queues nobody again
    assert plan_refresh(chunk_size=3) == []
    # but once their claim has run out (their tasks lost), the shoppers are planned again
    later = timezone.now() + dt.timedelta(seconds=10801)
    assert sum(c.planned for c in InterestRefreshChunk.objects.filter(pk__in=plan_refresh(now=later))) == 7


def test_the_coordinator_task_queues_one_task_per_chunk_after_commit(shoppers, django_capture_on_commit_callbacks):
    with adengine_settings(INTEREST_REFRESH_CHUNK_SIZE=2):
        with django_capture_on_commit_callbacks() as callbacks:
            result = coordinator.apply().get()
    assert result == {"chunks": 4}
    assert len(callbacks) == 4  # one refresh_interest_chunk per chunk, sent once the plan is committed


def test_running_the_chunks_refreshes_each_shopper_once_and_again_changes_nothing(shoppers, monkeypatch):
    computed: list[int] = []
    compute = interests._compute_for_shoppers

    def counting(shopper_ids, **kw):
        computed.extend(shopper_ids)
        return compute(shopper_ids, **kw)

    monkeypatch.setattr(interests, "_compute_for_shoppers", counting)
    planned = plan_refresh(chunk_size=3)
    # when every chunk's task runs
    results = [refresh_interest_chunk.apply(kwargs={"chunk_id": pk}).get() for pk in planned]
    # then every stale shopper was computed and written exactly once
    assert sorted(computed) == sorted(s.pk for s in shoppers)
    assert sum(r["refreshed"] for r in results) == 7
    assert Shopper.objects.filter(pk__in=[s.pk for s in shoppers], interest_vector__isnull=False).count() == 7
    assert all(c.finished_at and c.attempts == 1 for c in InterestRefreshChunk.objects.all())
    # when a task is delivered twice, or its chunk is reopened, nothing is computed again
    written = dict(Shopper.objects.values_list("pk", "interest_updated_at"))
    assert refresh_interest_chunk.apply(kwargs={"chunk_id": planned[0]}).get()["skipped"] == "already finished"
    InterestRefreshChunk.objects.filter(pk=planned[1]).update(finished_at=None)
    assert refresh_chunk(planned[1]) == {"refreshed": 0, "cleared": 0}
    assert len(computed) == 7 and dict(Shopper.objects.values_list("pk", "interest_updated_at")) == written
    # and nothing is left to plan
    assert plan_refresh(chunk_size=3) == []


def test_a_failed_chunk_is_retried_alone(shoppers, monkeypatch):
    planned = plan_refresh(chunk_size=3)
    middle = InterestRefreshChunk.objects.get(pk=planned[1])
    calls: list[list[int]] = []
    compute = interests._compute_for_shoppers

    def flaky(shopper_ids, **kw):
        calls.append(list(shopper_ids))
        if shopper_ids[0] >= middle.first_shopper and shopper_ids[-1] <= middle.last_shopper and len(calls) == 2:
            raise ConnectionError("the database went away")
        return compute(shopper_ids, **kw)

    monkeypatch.setattr(interests, "_compute_for_shoppers", flaky)
    # when the three chunks' tasks run and the middle one fails once
    for pk in planned:
        refresh_interest_chunk.apply(kwargs={"chunk_id": pk}).get()
    # then only the middle chunk ran again, and every chunk finished
    assert [len(c) for c in calls] == [3, 3, 3, 1]
    assert calls[1] == calls[2]
    chunks = {c.pk: c for c in InterestRefreshChunk.objects.all()}
    assert [chunks[pk].attempts for pk in planned] == [1, 2, 1]
    assert all(c.finished_at is not None and c.error == "" for c in chunks.values())
    assert Shopper.objects.filter(pk__in=[s.pk for s in shoppers], interest_vector__isnull=False).count() == 7


def test_a_chunk_that_keeps_failing_records_why_and_is_planned_again_later(shoppers, monkeypatch):
    def broken(shopper_ids, **kw):
        raise ValueError("no vectors")

    monkeypatch.setattr(interests, "_compute_for_shoppers", broken)
    with adengine_settings(INTEREST_REFRESH_CHUNK_RETRIES=1):
        (pk,) = plan_refresh(chunk_size=10)
        assert refresh_interest_chunk.apply(kwargs={"chunk_id": pk}).get() is None
    chunk = InterestRefreshChunk.objects.get(pk=pk)
    assert chunk.attempts == 2 and chunk.finished_at is None and "no vectors" in chunk.error
    assert plan_refresh(chunk_size=10) == []  # still claimed
    assert len(plan_refresh(chunk_size=10, now=timezone.now() + dt.timedelta(hours=4))) == 1


def test_a_bad_chunk_size_is_a_clear_error(shoppers):
    with pytest.raises(ValueError, match="INTEREST_REFRESH_CHUNK_SIZE"):
        plan_refresh(chunk_size=-5)


def test_a_missing_chunk_is_logged_and_skipped(db):
    assert refresh_chunk(987654) is None


def test_the_batched_fold_in_gives_the_per_shopper_vectors(imported):  # noqa: F811
    from adengine.models import ProductVector
    from adengine.selectors.shoppers import recent_events
    from adengine.services.interest_model import active_model, hybrid_vectors_for, shopper_hybrid, train_interest_model

    # given a trained model and shoppers with content vectors
    train_interest_model()
    interests.refresh_interests()
    model = active_model()
    content = {
        pk: np.asarray(v, np.float32)
        for pk, v in Shopper.objects.exclude(interest_vector=None).values_list("pk", "interest_vector")[:60]
    }
    now = timezone.now()
    # when their hybrid vectors are computed in one batch
    batch = hybrid_vectors_for(content, model=model, now=now)
    # then each is the vector the per-shopper fold-in gives
    events = recent_events(shopper_ids=list(content), limit_per_shopper=60)
    column = "fold_factors" if model.params.method == "ease" else "factors"
    factors = dict(ProductVector.objects.exclude(**{column: None}).values_list("product_id", column))
    for sid, vec in content.items():
        items: dict = {}
        for e in events[sid]:
            if e.product_id is not None and e.kind != "search":
                items.setdefault(e.product_id, []).append((e.kind, e.occurred_at.timestamp()))
        one = shopper_hybrid(model=model, content=vec, items=items, factors=factors, at=now.timestamp())
        np.testing.assert_allclose(batch[sid], one, rtol=1e-4, atol=1e-5)


def test_a_search_text_is_encoded_once_for_every_worker(encoder, monkeypatch):
    from adengine.ml import profile
    from adengine.models import QueryVector

    encoded: list[str] = []
    encode = encoder.encode_queries

    def counting(texts):
        encoded.extend(texts)
        return encode(texts)

    monkeypatch.setattr(encoder, "encode_queries", counting)
    now = timezone.now()
    histories = {
        1: [profile.Event(kind="search", occurred_at=now, product_id=None, product_label="", query="wool scarf")],
        2: [profile.Event(kind="search", occurred_at=now, product_id=None, product_label="", query="tea kettle"),
            profile.Event(kind="search", occurred_at=now, product_id=None, product_label="", query="wool scarf")],
    }  # fmt: skip
    # when one worker process encodes the searches
    first = interests.query_vectors(histories, encoder=encoder)
    assert sorted(encoded) == ["tea kettle", "wool scarf"]
    assert QueryVector.objects.filter(encoder_version=encoder.version).count() == 2
    # then another process (an empty cache) reads them back instead of encoding them again
    interests._QUERY_CACHE.clear()
    histories[3] = [profile.Event(kind="search", occurred_at=now, product_id=None, product_label="", query="red mug")]
    second = interests.query_vectors(histories, encoder=encoder)
    assert sorted(encoded) == ["red mug", "tea kettle", "wool scarf"]
    for q in first:
        np.testing.assert_allclose(second[q], first[q], atol=1e-6)


def _old_path(shopper_ids: list[int], *, encoder, now) -> dict:
    """The refresh as it was before issue 16 item 7: model instances per event, a loop per shopper and product."""
    from adengine.conf import settings as ad_settings
    from adengine.selectors.shoppers import recent_events
    from adengine.services.interest_model import active_model, hybrid_vectors_for

    events = recent_events(shopper_ids=shopper_ids, limit_per_shopper=ad_settings.PROFILE_MAX_EVENTS)
    vecs = interests.product_vectors({e.product_id for evs in events.values() for e in evs})
    histories = {sid: interests.to_profile_events(evs, {}) for sid, evs in events.items()}
    queries = interests.query_vectors(histories, encoder=encoder)
    content = interests.mean_vectors(histories, now=now, vectors=vecs, queries=queries)
    model = active_model()
    hybrids = hybrid_vectors_for(content, model=model, now=now, events=events)
    return {sid: (content.get(sid), len(events[sid]), hybrids.get(sid)) for sid in shopper_ids}


def test_the_batched_refresh_gives_the_per_shopper_vectors(imported, encoder):  # noqa: F811
    from adengine.models import BehaviourEvent
    from adengine.services.interest_model import train_interest_model

    # given a trained model, and shoppers with views, carts, purchases, repeated products and searches (and one with
    # no behaviour at all)
    train_interest_model()
    products = list(interests.product_vectors(BehaviourEvent.objects.values_list("product_id", flat=True)))[:3]
    now = timezone.now()
    searcher = ShopperFactory()
    for i, text in enumerate(["wool scarf", "tea kettle", "wool scarf"]):
        EventFactory(shopper=searcher, kind="search", product=None, query=text, occurred_at=now - dt.timedelta(days=i))
    for pid in products + products[:1]:
        EventFactory(shopper=searcher, kind="cart", product_id=pid, occurred_at=now - dt.timedelta(days=3))
    ids = sorted(set(BehaviourEvent.objects.values_list("shopper_id", flat=True))) + [ShopperFactory().pk]
    assert len(ids) > 100
    # when a batch is computed the new way (rows, sparse sums, one statement) and the old way (per shopper)
    new = interests._compute_for_shoppers(ids, encoder=encoder, now=now)
    old = _old_path(ids, encoder=encoder, now=now)
    # then every shopper gets the same content and hybrid vectors, within float rounding
    assert new.keys() == old.keys()
    assert new[ids[-1]][:3] == (None, 0, None)
    assert sum(new[sid][0] is not None for sid in ids) > 100
    for sid in ids:
        vec, n, hybrid, _ = new[sid]
        assert (vec is None, n, hybrid is None) == (old[sid][0] is None, old[sid][1], old[sid][2] is None)
        if vec is not None:
            np.testing.assert_allclose(vec, old[sid][0], rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(hybrid, old[sid][2], rtol=1e-4, atol=1e-5)
    # and what the refresh stores is exactly the float32 it computed (the binary write loses nothing)
    Shopper.objects.filter(pk=searcher.pk).update(last_event_at=now)
    assert interests.refresh_shoppers(first_id=searcher.pk, last_id=searcher.pk, encoder=encoder)["refreshed"] == 1
    stored = Shopper.objects.get(pk=searcher.pk)
    at = stored.interest_updated_at  # the refresh's own "now"
    computed = interests._compute_for_shoppers([searcher.pk], encoder=encoder, now=at)[searcher.pk]
    np.testing.assert_array_equal(np.asarray(stored.interest_vector, np.float32), computed[0])
    np.testing.assert_array_equal(np.asarray(stored.interest_hybrid, np.float32), computed[2])
    assert stored.interest_events == 7 and stored.interest_hybrid_model
