"""Fixtures for ad previews: a bilingual campaign in a product-card and a text placement, and a marketer."""

from __future__ import annotations

import pytest

from adengine.models import Creative, Placement
from tests.factories import AdvertiserFactory, CampaignFactory, CreativeFactory, PlacementFactory, ProductFactory

WAITING = {"status": Creative.Status.DRAFT, "passes_rules": True}


@pytest.fixture
def placements(db):
    """The home page's product cards and the search page's text ads."""
    return [
        PlacementFactory(key="home-hero", name="Home page, under the welcome", format=Placement.Format.PRODUCT),
        PlacementFactory(key="search-top", name="Search results, above the results", format=Placement.Format.TEXT),
    ]


@pytest.fixture
def product(db):
    return ProductFactory(title_en="Kestrel trail shoe", title_zh="Kestrel 越野跑鞋", price="1299.00")


@pytest.fixture
def campaign(placements, product):
    """Kestrel's trail campaign in both languages and both placements, with no copy yet."""
    campaign = CampaignFactory(
        advertiser=AdvertiserFactory(name="Kestrel"), name="Trail season", languages=["en", "zh"], products=[product]
    )
    campaign.placements.set(placements)
    return campaign


@pytest.fixture
def copy(campaign):
    """Approved and waiting copy in both languages, a rejected and a failing description that must never be used."""

    def add(asset_type, language, text, **fields):
        return CreativeFactory(campaign=campaign, asset_type=asset_type, language=language, text=text, **fields)

    return {
        "headline": add("headline", "en", "Grip for every trail", score=0.7),
        "draft": add("headline", "en", "<b>Grip</b> & go", score=0.9, **WAITING),
        "description": add("description", "en", "Trail shoes with grippy soles.", score=0.5),
        "waiting_description": add("description", "en", "Waiting description.", score=0.99, **WAITING),
        "rejected": add("description", "en", "Rejected description.", score=1.0, status=Creative.Status.REJECTED),
        "failing": add("description", "en", "Failing description.", score=1.0, passes_rules=False, status="draft"),
        "zh_headline": add("headline", "zh", "越野跑，稳稳抓地", **WAITING),
        "zh_description": add("description", "zh", "越野跑鞋，防滑大底。"),
    }


@pytest.fixture
def boss(client):
    from tests.factories import UserFactory

    user = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(user)
    return user
