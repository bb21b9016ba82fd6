"""Fixtures for the creative studio's tests: a bilingual campaign with a promoted product that states facts."""

from __future__ import annotations

import pytest

from adengine.models import Advertiser, Campaign
from tests.factories import CategoryFactory, ProductFactory


@pytest.fixture
def campaign(encoder):
    """A bilingual campaign for Sonica wireless earbuds, whose description states "30 hours"."""
    cat = CategoryFactory(slug="audio", name_en="Audio", name_zh="音频设备")
    product = ProductFactory(
        category=cat,
        title_en="Wireless earbuds",
        title_zh="无线耳机",
        brand="Sonica",
        description_en="Wireless earbuds with 30 hours of battery life.",
        description_zh="无线耳机，续航30小时。",
    )
    c = Campaign.objects.create(
        advertiser=Advertiser.objects.create(name="Sonica"),
        name="Earbuds",
        keywords=["wireless earbuds", "无线耳机"],
        languages=["en", "zh"],
        brand_voice="friendly",
    )
    c.promoted_products.add(product)
    return c
