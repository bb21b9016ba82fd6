"""The delivery diagnosis: one test per cause, each checked against the decision engine where it can be served."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from adengine import clock
from adengine.models import Campaign, CampaignDay, Creative, GenerationRequest, Impression
from adengine.selectors.diagnosis import diagnose, diagnose_one
from adengine.serving import PageContext, decide
from tests.conftest import adengine_settings
from tests.factories import CampaignFactory, CreativeFactory, PlacementFactory, ProductFactory, ShopperFactory

pytestmark = pytest.mark.django_db


def codes(campaign, **kwargs) -> list[str]:
    return [r.code for r in diagnose_one(campaign, **kwargs).reasons]


def reason(campaign, code: str, **kwargs):
    found = [r for r in diagnose_one(campaign, **kwargs).reasons if r.code == code]
    assert found, f"no {code!r} in {diagnose_one(campaign, **kwargs).reasons}"
    return found[0]


def served(placement, **kwargs) -> list[int]:
    return [ad.campaign_id for ad in decide(placement_key=placement.key, shopper=None, **kwargs).ads]


def test_a_campaign_with_nothing_in_its_way_has_no_reasons_and_is_served(healthy, placement):
    campaign = healthy()
    assert codes(campaign) == []
    assert diagnose_one(campaign).delivering
    assert served(placement) == [campaign.pk]


def test_no_approved_copy_says_how_many_variants_wait_for_review(healthy, placement):
    # given a campaign whose six variants (headlines and descriptions) wait for review, and one that fails the rules
    campaign = healthy(headline=False)
    for n in range(4):
        CreativeFactory(campaign=campaign, status=Creative.Status.DRAFT, text=f"Waiting headline {n}")
    for n in range(2):
        CreativeFactory(campaign=campaign, status=Creative.Status.DRAFT, asset_type="description", text=f"Desc {n}")
    CreativeFactory(campaign=campaign, status=Creative.Status.DRAFT, passes_rules=False, text="Best ever!!!")
    # when it is diagnosed
    found = reason(campaign, "no_copy")
    # then it says so, with the fix and the review page
    assert (found.message, found.fix, found.blocks) == ("no approved copy", "review 6 waiting variants", True)
    assert found.url == reverse("admin:adengine_campaign_review", args=[campaign.pk])
    assert served(placement) == []  # and the engine agrees


def test_no_approved_copy_while_copy_is_being_written(healthy):
    campaign = healthy(headline=False)
    GenerationRequest.objects.create(campaign=campaign, language="en", status=GenerationRequest.Status.RUNNING)
    assert reason(campaign, "no_copy").fix == "wait for 1 copy request being written, then review them"


def test_an_approved_headline_that_fails_the_rules_is_no_copy(healthy, placement):
    campaign = healthy(headline=False)
    CreativeFactory(campaign=campaign, passes_rules=False)  # approved once, fails the rules since
    assert "no_copy" in codes(campaign)
    assert served(placement) == []


def test_paused_draft_and_ended(healthy, placement):
    paused = healthy(status=Campaign.Status.PAUSED)
    draft = healthy(status=Campaign.Status.DRAFT)
    ended = healthy(status=Campaign.Status.ENDED)
    assert reason(paused, "paused").message == "paused"
    assert reason(draft, "draft").blocks and reason(ended, "ended").blocks
    assert served(placement) == []


def test_outside_its_schedule_before_the_start(healthy, placement):
    now = timezone.now()
    starts = timezone.make_aware(dt.datetime(now.year + 1, 12, 3))
    campaign = healthy(starts_at=starts)
    found = reason(campaign, "not_started")
    assert found.message == f"outside its schedule (starts 3 Dec {now.year + 1})" and found.blocks
    assert not diagnose_one(campaign).cannot_deliver  # a start in the future is not a mistake
    assert served(placement) == []


def test_outside_its_schedule_after_the_end(healthy, placement):
    campaign = healthy(ends_at=timezone.now() - dt.timedelta(hours=1))
    assert reason(campaign, "schedule_over").message.startswith("outside its schedule (ended ")
    assert served(placement) == []


def test_todays_budget_spent(healthy, placement):
    campaign = healthy(daily_budget=Decimal("120"))
    CampaignDay.objects.create(campaign=campaign, day=clock.today(), spent=Decimal("120"))
    found = reason(campaign, "daily_budget")
    assert found.message == "today's budget spent (¥120.00 of ¥120.00)" and found.blocks
    assert served(placement) == []


def test_ahead_of_the_pacing_plan_limits_but_does_not_stop_for_the_day(healthy):
    # given a daily budget of 120 of which 100 went in the first hour of the shop's day
    now = clock.midnight() + dt.timedelta(hours=1)
    campaign = healthy(daily_budget=Decimal("120"))
    CampaignDay.objects.create(campaign=campaign, day=clock.today(now), spent=Decimal("100"))
    # then at 01:00 it is ahead of the plan (1/24 of the day + 10 % slack = 17 of 120)
    found = reason(campaign, "pacing", now=now)
    assert not found.blocks
    assert found.message.startswith("ahead of today's pacing plan (¥100.00 spent, ¥17.00 planned by now of ¥120.00)")
    assert diagnose_one(campaign, now=now).plan_today == Decimal("17")


def test_total_budget_spent(healthy, placement):
    campaign = healthy(total_budget=Decimal("100"))
    Campaign.objects.filter(pk=campaign.pk).update(spent=Decimal("99.50"))  # less than one click (1.00) left
    campaign.refresh_from_db()
    found = reason(campaign, "total_budget")
    assert found.message == "total budget spent (¥99.50 of ¥100.00; one click costs ¥1.00)" and found.blocks
    assert served(placement) == []


def test_house_ads_are_never_stopped_by_a_budget(healthy):
    campaign = healthy(tier=Campaign.Tier.HOUSE, total_budget=Decimal("0"))
    assert codes(campaign) == []


def test_no_eligible_placement_when_its_placements_are_inactive(healthy, placement):
    campaign = healthy()
    off = PlacementFactory(key="sidebar", is_active=False)
    campaign.placements.set([off])
    found = reason(campaign, "no_placement")
    assert found.message == "no eligible placement: its placements (sidebar) are inactive" and found.blocks
    assert served(placement) == []


def test_no_eligible_placement_for_a_house_ad_where_none_takes_house_ads(healthy, placement):
    placement.allow_house_ads = False
    placement.save()
    campaign = healthy(tier=Campaign.Tier.HOUSE)
    assert reason(campaign, "no_placement").message == "no eligible placement: no active placement takes house ads"
    assert served(placement) == []


def test_no_approved_headline_in_the_languages_it_targets(healthy):
    # given a campaign for English shoppers whose only approved headline is Chinese
    campaign = healthy(headline=False, languages=["en"])
    CreativeFactory(campaign=campaign, language="zh", text="中文标题")
    found = reason(campaign, "language")
    assert found.message == "no approved headline in the shopper languages it targets (English): only Chinese " \
        "shoppers see it"  # fmt: skip
    assert not found.blocks
    assert found.url == reverse("admin:adengine_campaign_review", args=[campaign.pk])


def test_a_missing_language_falls_back_to_the_default_copy(healthy):
    campaign = healthy(languages=["en", "zh"])
    found = reason(campaign, "language_fallback")
    assert found.message == "no approved Chinese headline: Chinese shoppers see its English copy" and not found.blocks


def test_relevance_below_the_floor_on_every_placement(placement):
    # given a placement with a floor of 0.8 and a campaign with nothing to match a page and no target
    placement.relevance_floor = 0.8
    placement.save()
    campaign = CampaignFactory()
    CreativeFactory(campaign=campaign)
    found = reason(campaign, "relevance")
    assert found.blocks
    assert found.message == "relevance below the floor on every placement it can show on (it reaches at most 0.50; " \
        "floors: home-hero 0.80)"  # fmt: skip
    assert served(placement, context=PageContext(page="home")) == []  # the engine agrees
    placement.relevance_floor = None
    placement.save()
    assert served(placement, context=PageContext(page="home")) == [campaign.pk]


def test_relevance_below_the_page_floors_limits_a_campaign_without_page_matches(healthy, placement):
    campaign = healthy(product=False)  # a target, but no product, keywords or categories
    found = reason(campaign, "relevance_low")
    assert not found.blocks
    assert found.message == (
        "relevance below the floor (0.75) on some pages: with no promoted product, keywords or categories to match "
        "a page it has 0.50 there, so it reaches only shoppers close to its audience on them"
    )
    assert "relevance_low" not in codes(healthy(product=False, keywords=["running shoes"]))


def test_frequency_cap_reached_for_most_of_its_audience(healthy, placement):
    # given a cap of 2 a day, 4 of the 5 shoppers who saw the campaign today saw it twice
    campaign = healthy(frequency_cap=2)
    creative = campaign.creatives.get()
    for seen in [2, 2, 2, 2, 1]:
        shopper = ShopperFactory()
        for _ in range(seen):
            Impression.objects.create(
                decision_id=uuid.uuid4(), placement=placement, campaign=campaign, creative=creative,
                shopper=shopper, language="en", predicted_ctr=0.02, relevance=0.5, value=0.02, candidates=1,
                personalised=False, policy="test", propensity=1.0, served_at=timezone.now(),
            )  # fmt: skip
    found = reason(campaign, "frequency_cap")
    assert found.message == "frequency cap reached for most of its audience: 4 of the 5 shoppers who saw it today " \
        "have seen it 2 times"  # fmt: skip
    assert not found.blocks


def test_waiting_for_its_target_vector_stops_an_audience_campaign(placement):
    campaign = CampaignFactory(description="Trail runners who train in the mountains", audience_min_similarity=0.3)
    CreativeFactory(campaign=campaign)
    found = reason(campaign, "target")
    assert found.blocks and found.message.startswith("waiting for its target vector (worker)")
    assert served(placement) == []
    # without an audience threshold it still serves, only not personalised
    campaign.audience_min_similarity = None
    campaign.save()  # (its signal refreshes serving)
    assert not reason(campaign, "target").blocks
    assert served(placement, context=PageContext(page="home")) == [campaign.pk]


def test_promoted_products_out_of_stock(healthy):
    campaign = healthy(product=ProductFactory(stock=0))
    found = reason(campaign, "out_of_stock")
    assert found.message.startswith("its 1 promoted product is out of stock") and not found.blocks


def test_serving_switched_off(healthy, placement):
    campaign = healthy()
    with adengine_settings(SERVING_ENABLED=False):
        assert reason(campaign, "serving_off").blocks


def test_many_campaigns_take_as_many_queries_as_two(healthy, django_assert_max_num_queries):
    # given campaigns with every kind of fact to read: placements, copy, spend, products, caps
    def make(n):
        made = []
        for _ in range(n):
            c = healthy(daily_budget=Decimal("10"), frequency_cap=3)
            c.placements.set([PlacementFactory()])
            CampaignDay.objects.create(campaign=c, day=clock.today(), spent=Decimal("1"))
            made.append(Campaign.objects.get(pk=c.pk))
        return made

    two, eight = make(2), make(8)
    with django_assert_max_num_queries(12) as two_queries:
        diagnose(two)
    with django_assert_max_num_queries(len(two_queries.captured_queries)):
        diagnose(eight)
