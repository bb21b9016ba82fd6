"""Fault tests use the serving tests' placements and campaigns."""

from tests.serving.conftest import make_campaign, placement, shopper_with  # noqa: F401
