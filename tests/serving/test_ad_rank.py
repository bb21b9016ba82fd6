"""Ad rank: value per impression x quality, a relevance floor on contextual pages, one ad per advertiser."""

from __future__ import annotations

from decimal import Decimal

import pytest

from adengine.models import Campaign, Placement
from adengine.serving import PageContext, decide, get_backend
from tests.conftest import adengine_settings
from tests.factories import AdvertiserFactory, CampaignFactory, CreativeFactory, PlacementFactory

pytestmark = pytest.mark.django_db


def _campaign(advertiser=None, **fields):
    campaign = CampaignFactory(advertiser=advertiser or AdvertiserFactory(), **fields)
    CreativeFactory(campaign=campaign)
    return campaign


def _campaigns_shown(n: int, **kwargs) -> list[int]:
    return [ad.campaign_id for _ in range(n) for ad in decide(**kwargs).ads]


def test_a_high_bid_off_topic_ad_loses_to_a_relevant_one_on_a_category_page():
    """Demo: a cost-per-view skincare campaign won 15 of 20 decisions on the pets category page."""
    PlacementFactory(key="category-top", max_ads=1)
    skincare = _campaign(pricing=Campaign.Pricing.CPM, bid=Decimal("80.00"), categories=["skincare"])
    pets = _campaign(bid=Decimal("0.30"), categories=["pets"])
    shown = _campaigns_shown(30, placement_key="category-top", shopper=None, context=PageContext(category="pets"))
    assert shown == [pets.pk] * 30
    # on the home page (no floor) the high bid still competes
    home = _campaigns_shown(30, placement_key="category-top", shopper=None, context=PageContext(page="home"))
    assert skincare.pk in home


def test_nothing_clears_the_floor_shows_the_house_ad_or_nothing():
    PlacementFactory(key="category-top", max_ads=1)
    _campaign(categories=["skincare"])
    garden = PageContext(category="garden")
    assert decide(placement_key="category-top", shopper=None, context=garden).ads == []
    house = _campaign(tier=Campaign.Tier.HOUSE, bid=Decimal("0"))
    get_backend().invalidate()
    assert _campaigns_shown(5, placement_key="category-top", shopper=None, context=garden) == [house.pk] * 5
    # a placement's own floor wins over the page kind's
    Placement.objects.filter(key="category-top").update(relevance_floor=0.0)
    get_backend().invalidate()
    assert {c for c in _campaigns_shown(40, placement_key="category-top", shopper=None, context=garden)} != {house.pk}
    # and the setting decides for a kind of page
    Placement.objects.filter(key="category-top").update(relevance_floor=None)
    get_backend().invalidate()
    with adengine_settings(RELEVANCE_FLOORS={"category": 0.0}):
        assert any(c != house.pk for c in _campaigns_shown(40, placement_key="category-top", shopper=None,
                                                            context=garden))  # fmt: skip


def test_one_ad_per_advertiser_per_slot():
    PlacementFactory(key="home-hero", max_ads=2)
    big = AdvertiserFactory()
    a, b = _campaign(advertiser=big, bid=Decimal("2.00")), _campaign(advertiser=big, bid=Decimal("1.90"))
    # with only one advertiser, a two-ad slot shows one ad
    for _ in range(10):
        assert len(decide(placement_key="home-hero", shopper=None).ads) == 1
    # with another advertiser, the two ads are from the two advertisers
    other = _campaign(bid=Decimal("0.20"))
    get_backend().invalidate()
    for _ in range(10):
        shown = {ad.campaign_id for ad in decide(placement_key="home-hero", shopper=None).ads}
        assert len(shown) == 2 and other.pk in shown and len(shown & {a.pk, b.pk}) == 1
