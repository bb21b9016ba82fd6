"""Audience selection: nearest consenting shoppers to a campaign's target, filters keep k results."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from adengine.models import Advertiser, Campaign, Shopper
from adengine.selectors.audience import campaign_audience, top_interests, why_in_audience
from adengine.services.campaigns import campaign_target
from adengine.services.interests import refresh_interests
from tests.factories import CategoryFactory, EventFactory, ProductFactory, ShopperFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(encoder):
    shoes = CategoryFactory(slug="shoes", name_en="Running Shoes")
    kitchen = CategoryFactory(slug="kitchen", name_en="Kitchen")
    shoe = ProductFactory(category=shoes, title_en="Trail running shoe", brand="Stride")
    pan = ProductFactory(category=kitchen, title_en="Non-stick frying pan", brand="Kanto")
    runners, cooks = [], []
    for i in range(6):
        for product, group in ((shoe, runners), (pan, cooks)):
            s = ShopperFactory()
            days = 2 if i % 2 == 0 else 60  # half of each group inactive for two months
            EventFactory(shopper=s, product=product, occurred_at=timezone.now() - dt.timedelta(days=days))
            Shopper.objects.filter(pk=s.pk).update(last_event_at=timezone.now() - dt.timedelta(days=days))
            group.append(s)
    refresh_interests(encoder=encoder)
    campaign = Campaign.objects.create(
        advertiser=Advertiser.objects.create(name="Stride"),
        name="Trail season",
        description="People who run on trails",
        keywords=["trail running", "越野跑"],
    )
    campaign.promoted_products.add(shoe)
    return {"campaign": campaign, "runners": runners, "cooks": cooks, "shoe": shoe}


def test_runners_come_first(world):
    audience = campaign_audience(world["campaign"], campaign_target(world["campaign"]), k=6)
    assert {m.shopper.pk for m in audience} == {s.pk for s in world["runners"]}
    assert [m.distance for m in audience] == sorted(m.distance for m in audience)


def test_filters_still_return_k(world):
    audience = campaign_audience(world["campaign"], campaign_target(world["campaign"]), k=5, active_within_days=30)
    assert len(audience) == 5  # 3 active runners and then the 2 nearest active cooks
    assert all(m.shopper.last_event_at > timezone.now() - dt.timedelta(days=30) for m in audience)


def test_no_consent_never_in_an_audience(world):
    out = world["runners"][0]
    Shopper.objects.filter(pk=out.pk).update(personalisation=False)
    assert out.pk not in {
        m.shopper.pk for m in campaign_audience(world["campaign"], campaign_target(world["campaign"]), k=12)
    }


def test_why_and_top_interests_in_words(world):
    runner = Shopper.objects.get(pk=world["runners"][0].pk)
    why = why_in_audience(runner, campaign_target(world["campaign"]))
    assert why[0][:2] == ("viewed", "Trail running shoe")
    interests = top_interests(runner)
    assert interests["products"][0][0] == "Trail running shoe"
    assert interests["categories"][0] == "Running Shoes"


def test_admin_preview_shows_the_audience(world, client):
    admin = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw")
    client.force_login(admin)
    resp = client.get(f"/admin/adengine/campaign/{world['campaign'].pk}/audience/?k=3")
    assert resp.status_code == 200
    assert b"Trail running shoe" in resp.content
    shopper = world["runners"][0]
    resp = client.get(f"/admin/adengine/shopper/{shopper.pk}/change/")
    assert resp.status_code == 200 and b"Running Shoes" in resp.content
