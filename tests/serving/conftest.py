"""Fixtures for serving tests: placements, campaigns with approved copy, shoppers with vectors."""

from __future__ import annotations

import numpy as np
import pytest

from tests.factories import CampaignFactory, CreativeFactory, PlacementFactory, ProductFactory, ShopperFactory

DIMS = 384


def unit(seed: int) -> np.ndarray:
    """A reproducible random unit vector."""
    v = np.random.default_rng(seed).normal(size=DIMS).astype(np.float32)
    return v / np.linalg.norm(v)


@pytest.fixture
def placement():
    return PlacementFactory(key="home-hero", max_ads=1)


@pytest.fixture
def make_campaign():
    """A campaign with one promoted product and ``headlines`` approved English headlines."""

    def make(*, headlines: int = 1, product=None, target=None, **fields):
        product = product or ProductFactory()
        campaign = CampaignFactory(products=[product], **fields)
        if target is not None:
            campaign.target_vector = target
            campaign.save()
        for _ in range(headlines):
            CreativeFactory(campaign=campaign)
        return campaign

    return make


@pytest.fixture
def shopper_with(db):
    def make(vector=None, **fields):
        shopper = ShopperFactory(**fields)
        if vector is not None:
            shopper.interest_vector = vector
            shopper.save()
        return shopper

    return make
