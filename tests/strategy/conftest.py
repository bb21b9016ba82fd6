"""The serving fixtures (placements, campaigns with approved copy) are the strategy's too."""

from tests.serving.conftest import make_campaign, placement, shopper_with  # noqa: F401
