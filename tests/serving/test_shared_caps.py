"""Frequency caps hold across web processes: each capped ad is reserved in shared counters before it is shown.

Each ``Engine`` below stands for one web process (its own candidate index and its own cache of what a shopper
saw today); the counters are the real PostgreSQL table or the real Redis of the test broker.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter

import pytest
from django.conf import settings
from django.db import connection

from adengine import clock
from adengine.models import CapCounter, Impression
from adengine.serving import counters
from adengine.serving.engine import Engine
from tests.conftest import adengine_settings

BACKENDS = ["database", "redis"]


@pytest.fixture(params=BACKENDS)
def shared(request):
    """ADENGINE["SHARED_COUNTERS"] for the test: the database, or the test broker's Redis (its caps keys wiped)."""
    where = "database" if request.param == "database" else settings.CELERY_BROKER_URL
    with adengine_settings(SHARED_COUNTERS=where, SERVING_CAP_CACHE_SECONDS=3600):
        backend = counters.counters()
        if isinstance(backend, counters.RedisCounters):
            for key in backend.client.scan_iter("adengine:caps:*"):
                backend.client.delete(key)
        yield backend


@pytest.mark.django_db
def test_two_processes_together_show_a_capped_campaign_no_more_than_its_cap(placement, make_campaign, shopper_with,
                                                                              shared):  # fmt: skip
    # given a capped campaign, an uncapped one, and two web processes that have each read the shopper's day once
    capped = make_campaign(frequency_cap=3)
    other = make_campaign()
    shopper = shopper_with()
    web1, web2 = Engine(), Engine()
    for web in (web1, web2):
        web.seen_today.get(shopper.pk)
    # when the shopper's page views alternate between them (each process's own count stays stale all along)
    shown = Counter()
    for i in range(30):
        web = (web1, web2)[i % 2]
        for ad in web.decide(placement_key=placement.key, shopper=shopper).ads:
            shown[ad.campaign_id] += 1
    # then the capped campaign was shown exactly its cap in all, and the other filled the rest
    assert shown[capped.pk] == 3
    assert shown[other.pk] == 27
    logged = Impression.objects.filter(shopper=shopper, campaign=capped).count()
    assert logged == 3
    assert shared.seen(shopper.pk, clock.today()) == {capped.pk: 3}


@pytest.mark.django_db
def test_without_the_reservation_each_process_would_show_the_cap_on_its_own(placement, make_campaign, shopper_with):
    """The same traffic with the reservation taken out: the test above fails for the reason it exists."""
    capped = make_campaign(frequency_cap=3)
    make_campaign()
    shopper = shopper_with()
    web1, web2 = Engine(), Engine()
    for web in (web1, web2):
        web.seen_today.get(shopper.pk)
    with adengine_settings(SERVING_CAP_CACHE_SECONDS=3600):
        import adengine.serving.engine as engine

        real = engine.reserve_capped
        engine.reserve_capped = lambda *args: True  # every reservation granted
        try:
            shown = sum(
                ad.campaign_id == capped.pk
                for i in range(30)
                for ad in (web1, web2)[i % 2].decide(placement_key=placement.key, shopper=shopper).ads
            )
        finally:
            engine.reserve_capped = real
    assert shown == 6


@pytest.mark.django_db(transaction=True)
def test_concurrent_reservations_of_the_last_impression_grant_it_once(shared):
    # given a shopper one impression short of two campaigns' caps
    day = clock.today()
    assert shared.reserve(7, {101: 2, 102: 5}, day) == {101, 102}
    for _ in range(3):
        shared.reserve(7, {102: 5}, day)
    assert shared.seen(7, day) == {101: 1, 102: 4}
    # when eight threads reserve both at once
    granted: list[set[int]] = []
    start = threading.Barrier(8)

    def one():
        start.wait()
        try:
            granted.append(shared.reserve(7, {101: 2, 102: 5}, day))
        finally:
            connection.close()

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # then each campaign's last impression went to exactly one of them, and the counts stop at the caps
    assert sum(101 in g for g in granted) == 1
    assert sum(102 in g for g in granted) == 1
    assert shared.seen(7, day) == {101: 2, 102: 5}
    # and another shopper, or the next day, starts afresh
    assert shared.reserve(8, {101: 2}, day) == {101}
    assert shared.reserve(7, {101: 2}, day + dt.timedelta(days=1)) == {101}


@pytest.mark.django_db
def test_a_process_learns_from_a_refusal_and_stops_offering_the_campaign(placement, make_campaign, shopper_with):
    capped = make_campaign(frequency_cap=1)
    shopper = shopper_with()
    web1, web2 = Engine(), Engine()
    with adengine_settings(SERVING_CAP_CACHE_SECONDS=3600):
        web2.seen_today.get(shopper.pk)  # web2 read the shopper's day before web1 showed the ad
        assert [ad.campaign_id for ad in web1.decide(placement_key=placement.key, shopper=shopper).ads] == [capped.pk]
        # web2 still believes the cap is free: its reservation is refused and the slot stays empty
        assert web2.decide(placement_key=placement.key, shopper=shopper).ads == []
        assert web2.seen_today.get(shopper.pk)[capped.pk] == 1
    assert Impression.objects.filter(shopper=shopper).count() == 1


@pytest.mark.django_db
def test_old_days_are_purged_from_the_database_counters():
    today = clock.today()
    backend = counters.DatabaseCounters()
    backend.reserve(1, {5: 3}, today)
    backend.reserve(1, {5: 3}, today - dt.timedelta(days=1))
    backend.reserve(1, {5: 3}, today - dt.timedelta(days=2))
    assert counters.purge(today=today) == 1
    assert sorted(CapCounter.objects.values_list("day", flat=True)) == [today - dt.timedelta(days=1), today]


def test_a_bad_setting_says_what_to_use():
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="use 'database' or a Redis URL"):
        counters.RedisCounters("memcached://localhost")
