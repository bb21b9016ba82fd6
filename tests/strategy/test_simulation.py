"""The simulation drives the real serving, tracking, attribution and strategy code, day by day."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from adengine.models import Conversion, Experiment, HourlyStats, Impression
from adengine.services import simulation
from adengine.services.decisions import PageContext
from tests.conftest import adengine_settings
from tests.factories import OrderFactory, OrderLineFactory, PlacementFactory, ShopperFactory

pytestmark = pytest.mark.django_db


class TwoAdsTruth:
    """Everyone likes campaign ``good`` (30 % CTR) and ignores ``poor`` (1 %); a fifth of clicks buy."""

    def __init__(self, good, poor):
        self.good, self.poor = good, poor
        self.people = [ShopperFactory() for _ in range(30)]

    def shoppers(self, rng: random.Random, n: int):
        return self.people[:n]

    def page(self, shopper, rng):
        return PageContext(page="home"), ""

    def click_probability(self, shopper, ad):
        return 0.3 if ad.campaign_id == self.good.pk else 0.01

    def conversion_probability(self, shopper, ad):
        return 0.2

    def place_order(self, shopper, ad, when):
        order = OrderFactory(customer=shopper.user, created_at=when)
        OrderLineFactory(order=order, unit_price=Decimal("50.00"))
        from adengine.services.attribution import attribute_order

        # (the order signal attributes after commit, which a test's transaction never reaches: attribute now)
        return attribute_order(order=order)


def test_simulated_days_learn_and_beat_random_serving(make_campaign):
    for key in simulation.PLACEMENT_FOR_PAGE.values():
        PlacementFactory(key=key, max_ads=1)
    good, poor = make_campaign(), make_campaign()
    truth = TwoAdsTruth(good, poor)
    rows = simulation.run(truth=truth, days=4, shoppers=30, visits=3, seed=1)
    # then there is a row per simulated day and arm, dated in the past
    days = sorted({r.day for r in rows})
    assert len(days) == 4 and days[-1] == (timezone.localdate() - dt.timedelta(days=1)).isoformat()
    assert {r.arm for r in rows} == {"adengine", "random"}
    assert not Impression.objects.filter(served_at__date=timezone.localdate()).exists()
    # and the strategy learnt from them: statistics by day, and adengine's arm prefers the good ad
    assert HourlyStats.objects.dates("hour", "day").count() == 4
    ctr = {arm: sum(r.clicks for r in rows if r.arm == arm) / sum(r.impressions for r in rows if r.arm == arm)
           for arm in ("adengine", "random")}  # fmt: skip
    assert ctr["adengine"] > ctr["random"]
    assert Conversion.objects.exists()
    # and live serving is no longer split
    assert Experiment.objects.get(name=simulation.EXPERIMENT).status == "stopped"


def test_simulate_command_needs_a_truth():
    with adengine_settings(SIMULATION_TRUTH=""), pytest.raises(CommandError, match="SIMULATION_TRUTH"):
        call_command("adengine_simulate", "--days", "1")
    with pytest.raises(CommandError, match="at least 1"):
        call_command("adengine_simulate", "--days", "0")


def test_the_experiment_page_draws_the_daily_curve(client, make_campaign):
    from django.urls import reverse

    from tests.factories import UserFactory

    for key in simulation.PLACEMENT_FOR_PAGE.values():
        PlacementFactory(key=key, max_ads=1)
    good, poor = make_campaign(), make_campaign()
    simulation.run(truth=TwoAdsTruth(good, poor), days=2, shoppers=10, visits=2, seed=2)
    exp = Experiment.objects.get(name=simulation.EXPERIMENT)
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    page = client.get(reverse("admin:adengine_experiment_change", args=[exp.pk])).content.decode()
    assert "CTR by day and arm" in page and "<svg" in page
