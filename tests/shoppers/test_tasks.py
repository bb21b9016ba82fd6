"""Tasks through the real broker and a real worker: enqueued after commit, idempotent."""

from __future__ import annotations

import time

import pytest
from celery.contrib.testing.worker import start_worker

from adengine.models import ProductVector, Shopper
from shop.celery import app
from tests.factories import EventFactory, ProductFactory, ShopperFactory


def _wait(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


@pytest.fixture
def worker(encoder, transactional_db):
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
        yield


def test_a_changed_product_is_re_embedded_by_the_worker(worker):
    # given a product saved in a committed transaction
    product = ProductFactory(title_en="Bamboo cutting board")
    # then the post-commit task reaches the worker through Redis and a vector appears
    assert _wait(lambda: ProductVector.objects.filter(pk=product.pk).exists())
    first = ProductVector.objects.get(pk=product.pk).text_hash
    product.title_en = "Walnut cutting board"
    product.save()
    assert _wait(lambda: ProductVector.objects.get(pk=product.pk).text_hash != first)


def test_refresh_task_runs_in_the_worker_and_twice_is_harmless(worker):
    from adengine.tasks import refresh_interests

    shopper = ShopperFactory()
    EventFactory(shopper=shopper)
    Shopper.objects.filter(pk=shopper.pk).update(last_event_at=EventFactory._meta.model.objects.get().occurred_at)
    first = refresh_interests.apply_async()
    second = refresh_interests.apply_async()
    assert _wait(lambda: Shopper.objects.get(pk=shopper.pk).interest_vector is not None)
    assert first.id != second.id
    shopper.refresh_from_db()
    assert shopper.interest_events == 1
