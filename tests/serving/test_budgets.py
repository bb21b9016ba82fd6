"""Budgets under concurrency: many simultaneous clicks never spend more than the budget."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from adengine.models import AdEvent, Campaign, CampaignDay
from adengine.services.budgets import charge
from adengine.serving import decide, tokens

from .test_tracking import BROWSER

N = 10  # the budget pays for exactly N clicks
CLICKS = 40


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("budget", ["total", "daily"])
def test_concurrent_clicks_never_overspend(placement, make_campaign, budget):
    # given a budget for exactly N clicks and 4N different served ads
    fields = (
        {"total_budget": Decimal("0.75") * N}
        if budget == "total"
        else {"total_budget": Decimal(1000), "daily_budget": Decimal("0.75") * N}
    )
    campaign = make_campaign(bid=Decimal("0.75"), **fields)
    urls = []
    for _ in range(CLICKS):
        (ad,) = decide(placement_key=placement.key, shopper=None).ads
        urls.append(tokens.urls(ad.nonce)["click_url"])
    barrier = threading.Barrier(8)

    def click(i: int) -> int:
        try:
            if i < 8:
                barrier.wait()  # the first eight start at the same instant
            # different networks, so the per-IP limit does not interfere
            return Client().get(urls[i], HTTP_USER_AGENT=BROWSER, REMOTE_ADDR=f"10.0.{i}.1").status_code
        finally:
            connection.close()

    # when they are all clicked at once from 8 threads
    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = list(pool.map(click, range(CLICKS)))
    # then every click was answered, exactly N were billed and the budget is spent to the cent
    assert codes == [302] * CLICKS
    billed = AdEvent.objects.filter(kind="click", charge__gt=0)
    assert billed.count() == N
    assert AdEvent.objects.filter(kind="click", status="over_budget").count() == CLICKS - N
    campaign.refresh_from_db()
    assert campaign.spent == Decimal("0.75") * N
    if budget == "daily":
        assert CampaignDay.objects.get(campaign=campaign, day=timezone.localdate()).spent == Decimal("0.75") * N


@pytest.mark.django_db(transaction=True)
def test_concurrent_replays_of_one_link_bill_once(placement, make_campaign):
    campaign = make_campaign(bid=Decimal("2.00"))
    (ad,) = decide(placement_key=placement.key, shopper=None).ads
    url = tokens.urls(ad.nonce)["click_url"]
    barrier = threading.Barrier(6)

    def click(i: int) -> int:
        try:
            barrier.wait()
            return Client().get(url, HTTP_USER_AGENT=BROWSER, REMOTE_ADDR=f"10.1.{i}.1").status_code
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=6) as pool:
        codes = sorted(pool.map(click, range(6)))
    assert codes == [302] + [409] * 5
    campaign.refresh_from_db()
    assert campaign.spent == Decimal("2.00")
    assert AdEvent.objects.filter(status="duplicate").count() == 5


@pytest.mark.django_db
def test_charge_refuses_what_the_daily_budget_cannot_pay(make_campaign):
    campaign = make_campaign(total_budget=Decimal(100), daily_budget=Decimal(5))
    assert charge(campaign_id=campaign.pk, amount=Decimal(3))
    assert not charge(campaign_id=campaign.pk, amount=Decimal(3))  # 6 > 5 today: nothing charged at all
    assert charge(campaign_id=campaign.pk, amount=Decimal(2))
    assert Campaign.objects.get(pk=campaign.pk).spent == Decimal(5)


@pytest.mark.django_db(transaction=True)
def test_concurrent_clicks_from_one_network_respect_the_per_ip_limit(placement, make_campaign):
    """The per-IP limit was a count-then-insert: 13 and 21 clicks were counted against 10 under concurrency."""
    from tests.conftest import adengine_settings

    limit, clicks = 5, 24
    make_campaign(bid=Decimal("0.10"), total_budget=Decimal(1000))
    urls = []
    for _ in range(clicks):
        (ad,) = decide(placement_key=placement.key, shopper=None).ads
        urls.append(tokens.urls(ad.nonce)["click_url"])
    barrier = threading.Barrier(8)

    def click(i: int) -> int:
        try:
            if i < 8:
                barrier.wait()
            return Client().get(urls[i], HTTP_USER_AGENT=BROWSER, REMOTE_ADDR=f"192.0.2.{i}").status_code
        finally:
            connection.close()

    # when 24 different ads are clicked at once from one /24 network
    with adengine_settings(TRACKING_RATE_LIMITS={"view": 100, "click": limit}):
        with ThreadPoolExecutor(max_workers=8) as pool:
            codes = list(pool.map(click, range(clicks)))
    # then each got an answer, and exactly `limit` were counted and billed
    assert codes == [302] * clicks
    assert AdEvent.objects.filter(kind="click", status="accepted").count() == limit
    assert AdEvent.objects.filter(kind="click", status="rate_limited").count() == clicks - limit
    assert Campaign.objects.get().spent == Decimal("0.10") * limit
