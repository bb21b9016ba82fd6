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
from adengine.serving import PageContext
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
    # (budgets that last the four days: at 1.00 a click the factory's 100 ran out on the last day, when every arm
    # could serve only the poor ad)
    good, poor = make_campaign(total_budget=Decimal("10000")), make_campaign(total_budget=Decimal("10000"))
    truth = TwoAdsTruth(good, poor)
    outcome = simulation.run(truth=truth, days=4, shoppers=30, visits=6, seed=1)
    rows = outcome.days
    # then there is a row per simulated day and arm, dated in the past
    days = sorted({r.day for r in rows})
    assert len(days) == 4 and days[-1] == (timezone.localdate() - dt.timedelta(days=1)).isoformat()
    assert {r.arm for r in rows} == {"adengine", "previous", "random"}
    assert not Impression.objects.filter(served_at__date=timezone.localdate()).exists()
    # and the strategy learnt from them: statistics by day, and adengine's arm prefers the good ad
    assert HourlyStats.objects.dates("hour", "day").count() == 4
    # (from the second day: the first is served on the priors, before any click is learnt)
    learnt = [r for r in rows if r.day > days[0]]
    assert all(sum(r.impressions for r in learnt if r.arm == arm) for arm in ("adengine", "random"))
    # the share of the good ad is what each arm chose (the clicks add their own noise: about 0.04 of CTR at ~150
    # impressions an arm, against the 0.1 between learning and chance); the expected CTR follows from it
    share = {}
    for arm in ("adengine", "random"):
        served = Impression.objects.filter(served_at__date__gt=days[0], context__arm=arm)
        share[arm] = served.filter(campaign=good).count() / served.count()
    assert share["adengine"] > 0.7 and share["random"] < 0.7, share
    expected = {arm: 0.3 * s + 0.01 * (1 - s) for arm, s in share.items()}
    assert expected["adengine"] > expected["random"] + 0.05, expected
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


class AnyAdTruth(TwoAdsTruth):
    """For the command (SIMULATION_TRUTH names a class without arguments): a tenth of the ads are clicked."""

    def __init__(self):
        self.people = [ShopperFactory() for _ in range(30)]

    def click_probability(self, shopper, ad):
        return 0.1


@pytest.fixture
def live_click(make_campaign):
    """The live site served an ad today and its click was billed (1.00 of the campaign's daily budget)."""
    from adengine.services.tracking import record
    from adengine.serving import decide, tokens

    for key in simulation.PLACEMENT_FOR_PAGE.values():
        PlacementFactory(key=key, max_ads=1)
    campaign = make_campaign(daily_budget=Decimal("50.00"))
    (ad,) = decide(placement_key="home-hero", shopper=None).ads
    browser = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
    assert record(kind="click", token=tokens.make(nonce=ad.nonce, row=ad.row), ip="203.0.113.5", user_agent=browser)
    return campaign, Impression.objects.get(nonce=ad.nonce)


def test_the_simulation_refuses_a_database_with_live_traffic(live_click):
    # when it is asked to run beside the live site's impressions
    with adengine_settings(SIMULATION_TRUTH="tests.strategy.test_simulation.AnyAdTruth"):
        with pytest.raises(CommandError, match=r"live traffic \(1 impression\(s\) not made by a simulation.*--force"):
            call_command("adengine_simulate", "--days", "1", "--shoppers", "5")
    # then it did nothing
    assert Impression.objects.count() == 1 and not Experiment.objects.filter(name=simulation.EXPERIMENT).exists()


def test_forced_the_simulation_leaves_live_rows_and_todays_live_spend_alone(live_click):
    from adengine.models import CampaignDay

    campaign, live = live_click
    today = timezone.localdate()
    # when it is forced to run on the live database
    with adengine_settings(SIMULATION_TRUTH="tests.strategy.test_simulation.AnyAdTruth"):
        call_command("adengine_simulate", "--days", "2", "--shoppers", "10", "--visits", "3", "--force")
    # then it simulated (its own rows are dated in the past)...
    exp = Experiment.objects.get(name=simulation.EXPERIMENT)
    simulated = Impression.objects.filter(context__experiment=exp.pk)
    assert simulated.exists() and not simulated.filter(served_at__date=today).exists()
    # ...but the live impression keeps its time and today's live spend stays today's (no budget reset)
    assert Impression.objects.get(pk=live.pk).served_at == live.served_at
    assert CampaignDay.objects.get(campaign=campaign, day=today).spent == Decimal("1.00")
    campaign.refresh_from_db()
    past = sum(d.spent for d in CampaignDay.objects.filter(campaign=campaign, day__lt=today))
    assert past > 0 and campaign.spent == Decimal("1.00") + past


def test_the_simulate_command_reports_the_three_arms_as_json(make_campaign):
    import io
    import json

    for key in simulation.PLACEMENT_FOR_PAGE.values():
        PlacementFactory(key=key, max_ads=1)
    make_campaign(), make_campaign()
    out, err = io.StringIO(), io.StringIO()
    with adengine_settings(SIMULATION_TRUTH="tests.strategy.test_simulation.AnyAdTruth"):
        # (30 shoppers: each of the three arms gets some, whatever the experiment's salt; --verbosity 2: the
        # progress bar drawn on a stderr that is not a terminal)
        call_command("adengine_simulate", "--days", "2", "--shoppers", "30", "--visits", "2", "--json",
                     "--verbosity", "2", stdout=out, stderr=err)  # fmt: skip
    # the progress went to stderr, counted in shopper-days, and stdout still ends with one JSON line
    assert "simulating 2 days: 100%" in err.getvalue() and "60/60" in err.getvalue()
    report = json.loads(out.getvalue().strip().splitlines()[-1])
    # the keys it always had, and the previous policy's, revenue per 1,000 impressions and page relevance
    assert {"ctr_adengine", "ctr_random", "roas_adengine", "roas_random", "days", "by_day"} <= set(report)
    assert {"ctr_previous", "rpm_adengine", "rpm_previous", "rpm_random", "page_relevance_adengine",
            "page_relevance_previous"} <= set(report)  # fmt: skip
    assert {r["arm"] for r in report["by_day"]} == {"adengine", "previous", "random"}
    # RPM is what the campaigns were billed per 1,000 impressions, from the same figures as the reports
    imps = sum(r["impressions"] for r in report["by_day"] if r["arm"] == "adengine")
    spend = sum(float(r["spend"]) for r in report["by_day"] if r["arm"] == "adengine")
    assert report["rpm_adengine"] == pytest.approx(1000 * spend / imps)
    # the home page only: no category or product page was seen, so there is no page-relevance share
    assert report["page_relevance_adengine"] is None
