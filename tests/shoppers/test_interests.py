"""Interest vectors: incremental refresh, idempotence, consent, erasure, rows deleted underneath."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from django.db import connection
from django.utils import timezone

from adengine.models import BehaviourEvent, ProductVector, Shopper
from adengine.services.interests import refresh_interests
from adengine.services.products import embed_products
from adengine.services.shoppers import erase_shopper, set_personalisation
from tests.factories import CategoryFactory, EventFactory, ProductFactory, ShopperFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog():
    shoes = CategoryFactory(slug="shoes", name_en="Running Shoes", name_zh="跑鞋")
    kitchen = CategoryFactory(slug="kitchen", name_en="Kitchen", name_zh="厨房")
    return {
        "shoe": ProductFactory(category=shoes, title_en="Trail running shoe", title_zh="越野跑鞋", brand="Stride"),
        "shoe2": ProductFactory(category=shoes, title_en="Road racing flat", title_zh="竞速跑鞋", brand="Velo"),
        "pan": ProductFactory(category=kitchen, title_en="Non-stick frying pan", title_zh="不粘煎锅", brand="Kanto"),
        "knife": ProductFactory(category=kitchen, title_en="Chef's knife", title_zh="主厨刀", brand="Kanto"),
    }


def _shopper_with(products, days_ago=1.0):
    shopper = ShopperFactory()
    for p in products:
        EventFactory(shopper=shopper, product=p, occurred_at=timezone.now() - dt.timedelta(days=days_ago))
    Shopper.objects.filter(pk=shopper.pk).update(last_event_at=timezone.now() - dt.timedelta(days=days_ago))
    shopper.refresh_from_db()
    return shopper


def test_vectors_reflect_what_shoppers_did(catalog, encoder):
    # given a runner and a cook
    runner = _shopper_with([catalog["shoe"], catalog["shoe2"]])
    cook = _shopper_with([catalog["pan"], catalog["knife"]])
    # when the refresh runs
    result = refresh_interests(encoder=encoder)
    # then both have unit vectors, each closer to their own products
    assert result == {"refreshed": 2, "cleared": 0}
    runner.refresh_from_db()
    cook.refresh_from_db()
    vecs = dict(ProductVector.objects.values_list("product_id", "embedding"))
    r, c = np.asarray(runner.interest_vector), np.asarray(cook.interest_vector)
    assert abs(np.linalg.norm(r) - 1) < 1e-4
    assert r @ np.asarray(vecs[catalog["shoe"].pk]) > r @ np.asarray(vecs[catalog["pan"].pk])
    assert c @ np.asarray(vecs[catalog["pan"].pk]) > c @ np.asarray(vecs[catalog["shoe"].pk])
    assert runner.interest_events == 2 and runner.interest_source_at == runner.last_event_at


def test_refresh_is_incremental_and_idempotent(catalog, encoder):
    # given 3 shoppers with fresh vectors
    shoppers = [_shopper_with([catalog["shoe"]]), _shopper_with([catalog["pan"]]), _shopper_with([catalog["knife"]])]
    refresh_interests(encoder=encoder)
    written = dict(Shopper.objects.values_list("pk", "interest_updated_at"))
    # when nothing changed, then nothing is written
    assert refresh_interests(encoder=encoder) == {"refreshed": 0, "cleared": 0}
    # when one shopper does something new
    from adengine.services.behaviour import record_event

    record_event(shopper=shoppers[1], kind="view", product=catalog["shoe"], trigger_refresh=False)
    result = refresh_interests(encoder=encoder)
    # then only that shopper is re-embedded
    assert result["refreshed"] == 1
    after = dict(Shopper.objects.values_list("pk", "interest_updated_at"))
    changed = [pk for pk in written if after[pk] != written[pk]]
    assert changed == [shoppers[1].pk]


def test_a_concurrent_run_steps_aside(catalog, encoder):
    _shopper_with([catalog["shoe"]])
    import psycopg

    from adengine.services.interests import _REFRESH_LOCK

    other = psycopg.connect(**{k: v for k, v in connection.get_connection_params().items() if k != "cursor_factory"})
    try:
        other.execute("SELECT pg_advisory_lock(%s)", [_REFRESH_LOCK])
        assert refresh_interests(encoder=encoder)["skipped"] == "another refresh is running"
        # released explicitly: a closed connection's locks go when its server process has ended, a moment later
        other.execute("SELECT pg_advisory_unlock(%s)", [_REFRESH_LOCK])
    finally:
        other.close()
    assert refresh_interests(encoder=encoder)["refreshed"] == 1


def test_no_consent_no_vector(catalog, encoder):
    shopper = _shopper_with([catalog["shoe"]])
    refresh_interests(encoder=encoder)
    shopper.refresh_from_db()
    assert shopper.interest_vector is not None
    # when consent is withdrawn, the vector and the browsing history go
    set_personalisation(shopper=shopper, allowed=False)
    shopper.refresh_from_db()
    assert shopper.interest_vector is None and not shopper.events.exists()
    # and later refreshes never compute one
    Shopper.objects.filter(pk=shopper.pk).update(last_event_at=timezone.now())
    refresh_interests(encoder=encoder)
    shopper.refresh_from_db()
    assert shopper.interest_vector is None


def test_erasure_deletes_behaviour_and_vectors(catalog, encoder):
    shopper = _shopper_with([catalog["shoe"], catalog["pan"]])
    refresh_interests(encoder=encoder)
    assert erase_shopper(shopper=shopper) == {"shoppers": 1, "events": 2}
    assert not Shopper.objects.filter(pk=shopper.pk).exists()
    assert not BehaviourEvent.objects.exists()


def test_deleting_the_user_erases_the_shopper(catalog):
    shopper = _shopper_with([catalog["shoe"]])
    shopper.user.delete()
    assert not Shopper.objects.exists() and not BehaviourEvent.objects.exists()


def test_empty_history_gives_no_vector_not_a_zero_vector(catalog, encoder):
    # given a shopper whose only product was deleted after their vector was computed
    shopper = _shopper_with([catalog["knife"]])
    refresh_interests(encoder=encoder)
    catalog["knife"].order_lines.all().delete()
    catalog["knife"].delete()  # cascades to the event: the history is now empty
    Shopper.objects.filter(pk=shopper.pk).update(last_event_at=timezone.now())
    # when the refresh runs, then the vector is cleared rather than zeroed
    assert refresh_interests(encoder=encoder) == {"refreshed": 0, "cleared": 1}
    shopper.refresh_from_db()
    assert shopper.interest_vector is None


def test_search_only_sessions_get_a_vector_from_their_text(encoder):
    shopper = Shopper.objects.create(anonymous_key="a" * 32)
    from adengine.services.behaviour import record_event

    record_event(shopper=shopper, kind="search", query="yoga mat", trigger_refresh=False)
    refresh_interests(encoder=encoder)
    shopper.refresh_from_db()
    assert shopper.interest_vector is not None


def test_product_vectors_follow_product_changes(catalog, encoder):
    assert embed_products(encoder=encoder) == 4
    assert embed_products(encoder=encoder) == 0  # unchanged text: nothing re-embedded
    before = np.asarray(ProductVector.objects.get(pk=catalog["pan"].pk).embedding)
    catalog["pan"].title_en = "Cast iron wok"
    catalog["pan"].save()
    assert embed_products(encoder=encoder) == 1
    after = np.asarray(ProductVector.objects.get(pk=catalog["pan"].pk).embedding)
    assert float(before @ after) < 0.999
    # and ids of products deleted meanwhile are skipped
    assert embed_products(product_ids=[999999, catalog["shoe"].pk], encoder=encoder, force=True) == 1


def test_embedding_named_products_reads_only_their_stored_vectors(catalog, encoder):
    """A product's save sends its id alone: the task compares that product's text, not the whole catalog's."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    assert embed_products(encoder=encoder) == 4
    with CaptureQueriesContext(connection) as queries:
        assert embed_products(product_ids=[catalog["pan"].pk], encoder=encoder) == 0  # unchanged: skipped
    reads = [q["sql"] for q in queries.captured_queries if "adengine_productvector" in q["sql"]]
    assert reads and all(str(catalog["pan"].pk) in sql for sql in reads), reads
    catalog["pan"].title_en = "Cast iron wok"
    catalog["pan"].save()
    assert embed_products(product_ids=[catalog["pan"].pk, catalog["shoe"].pk], encoder=encoder) == 1
