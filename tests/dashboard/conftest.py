"""Fixtures for the campaign dashboard: a placement, and a campaign that delivers (the baseline each cause breaks)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.factories import CampaignFactory, CreativeFactory, PlacementFactory, ProductFactory

DIMS = 384


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=DIMS).astype(np.float32)
    return v / np.linalg.norm(v)


@pytest.fixture
def placement(db):
    return PlacementFactory(key="home-hero", max_ads=1)


@pytest.fixture
def healthy(placement):
    """A campaign with nothing in its way: active, in budget, a promoted product in stock, an approved English
    headline, a target vector; ``fields`` change it, ``headline=False`` leaves it without copy."""

    def make(*, headline: bool = True, product=True, **fields):
        products = [ProductFactory()] if product is True else ([product] if product else [])
        campaign = CampaignFactory(products=products, **fields)
        campaign.target_vector = unit(campaign.pk)
        campaign.save()
        if headline:
            CreativeFactory(campaign=campaign)
        return campaign

    return make
