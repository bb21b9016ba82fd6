"""The strategy update: incremental from its watermark, idempotent, learning posteriors and labels."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.utils import timezone

from adengine.models import AdEvent, Campaign, Conversion, Creative, HourlyStats, Impression, StrategyState
from adengine.services.strategy import update_strategy
from tests.factories import CreativeFactory

pytestmark = pytest.mark.django_db


def log_traffic(
    creative: Creative, placement, *, served: int, clicks: int, when=None, relevance: float = 0.5
) -> list[Impression]:
    """``served`` impressions of a headline, the first ``clicks`` of them clicked (counted, billed at 1.00)."""
    when = when or timezone.now() - dt.timedelta(hours=1)
    imps = Impression.objects.bulk_create(
        [
            Impression(
                decision_id=uuid.uuid4(), placement=placement, campaign=creative.campaign, creative=creative,
                language="en", propensity=0.5, predicted_ctr=0.02, relevance=relevance, value=0.02, candidates=2,
                personalised=False, policy="test", landing_url="/", served_at=when,
            )
            for _ in range(served)
        ]
    )  # fmt: skip
    AdEvent.objects.bulk_create(
        [
            AdEvent(impression=i, impression_served_at=i.served_at, campaign=creative.campaign, kind="click",
                    status="accepted", charge=Decimal("1.00"), occurred_at=when)
            for i in imps[:clicks]
        ]
    )  # fmt: skip
    return imps


def test_nothing_new_does_nothing_and_says_so():
    result = update_strategy(lag_seconds=0)
    assert result["changed"] is False and "no new" in result["message"]


def test_update_rolls_up_learns_and_is_idempotent(placement, make_campaign):
    # given a campaign with two headlines and a day of traffic
    campaign = make_campaign(headlines=0)
    a, b = CreativeFactory(campaign=campaign, score=0.9), CreativeFactory(campaign=campaign, score=0.7)
    log_traffic(a, placement, served=300, clicks=12)
    log_traffic(b, placement, served=100, clicks=1)
    # when the strategy update runs
    result = update_strategy(lag_seconds=0)
    # then the hourly statistics hold every impression and click, and spend
    totals = HourlyStats.objects.aggregate(i=Sum("impressions"), c=Sum("clicks"), s=Sum("spend"))
    assert (totals["i"], totals["c"], totals["s"]) == (400, 13, Decimal("13.00"))
    assert result["impressions"] == 400 and result["clicks"] == 13
    # and each headline's posterior is its prior plus its own counts
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.served, a.clicked, b.served, b.clicked) == (300, 12, 100, 1)
    prior_a = 0.02 * 1.5 * 50  # the better-fitting headline starts at BASE_CTR x 1.5, strength 50
    assert a.ctr_alpha == pytest.approx(prior_a + 12) and a.ctr_beta == pytest.approx(50 - prior_a + 288)
    # and labels: enough impressions to judge A, not B
    assert a.label == "BEST" and b.label == "LEARNING"
    # when it runs again with nothing new, nothing changes
    before = list(HourlyStats.objects.values_list("impressions", "clicks"))
    again = update_strategy(lag_seconds=0)
    assert again["changed"] is False
    assert list(HourlyStats.objects.values_list("impressions", "clicks")) == before
    a.refresh_from_db()
    assert (a.served, a.clicked) == (300, 12)
    # and new traffic is added, not recounted
    log_traffic(b, placement, served=50, clicks=0)
    update_strategy(lag_seconds=0)
    b.refresh_from_db()
    assert b.served == 150
    state = StrategyState.objects.get()
    assert state.impression_id == Impression.objects.latest("pk").pk


def test_recent_rows_wait_for_the_next_run(placement, make_campaign):
    campaign = make_campaign(headlines=0)
    a = CreativeFactory(campaign=campaign)
    log_traffic(a, placement, served=10, clicks=0, when=timezone.now())
    assert update_strategy(lag_seconds=60)["changed"] is False
    assert update_strategy(lag_seconds=0)["impressions"] == 10


def test_a_clearly_worse_headline_is_labelled_low_and_paused(placement, make_campaign):
    campaign = make_campaign(headlines=0)
    good = CreativeFactory(campaign=campaign)
    bad = CreativeFactory(campaign=campaign)
    middling = CreativeFactory(campaign=campaign)
    log_traffic(good, placement, served=1000, clicks=60)
    log_traffic(bad, placement, served=1000, clicks=5)
    log_traffic(middling, placement, served=250, clicks=13)
    update_strategy(lag_seconds=0)
    labels = dict(Creative.objects.values_list("pk", "label"))
    statuses = dict(Creative.objects.values_list("pk", "status"))
    assert labels[good.pk] == "BEST" and statuses[good.pk] == "approved"
    assert labels[bad.pk] == "LOW" and statuses[bad.pk] == "paused"  # almost surely worse, served enough
    assert labels[middling.pk] in {"GOOD", "LOW"} and statuses[middling.pk] == "approved"  # not served 2x enough


def test_conversions_update_the_campaign(placement, make_campaign):
    campaign = make_campaign(headlines=0)
    a = CreativeFactory(campaign=campaign)
    imps = log_traffic(a, placement, served=20, clicks=10)
    for n, imp in enumerate(imps[:2]):
        Conversion.objects.create(
            order_key=f"O{n}", campaign=campaign, impression=imp, click=imp.events.get(), revenue=Decimal("150.00"),
            ordered_at=timezone.now() - dt.timedelta(minutes=30),
        )  # fmt: skip
    update_strategy(lag_seconds=0)
    campaign = Campaign.objects.get(pk=campaign.pk)
    assert (campaign.clicked, campaign.converted) == (10, 2)
    assert campaign.cvr_alpha == 3.0 and campaign.cvr_beta == 27.0
    assert campaign.revenue_per_conversion == pytest.approx(150.0)
    assert HourlyStats.objects.aggregate(r=Sum("revenue"))["r"] == Decimal("300.00")


def test_delivery_shifts_toward_the_better_placement_and_paces_an_overspender(make_campaign):
    from adengine.models import CampaignDay
    from adengine.services.strategy import shift_delivery
    from tests.factories import PlacementFactory

    top, side = PlacementFactory(key="top"), PlacementFactory(key="side")
    campaign = make_campaign(headlines=0, daily_budget=Decimal("10"), total_budget=Decimal("1000"))
    ad = CreativeFactory(campaign=campaign)
    # given a week in which the top slot earned 3x the clicks per unit spent of the side slot, and the
    # campaign's close audience (relevance >= 0.75, all of the top slot's traffic here) did better too
    log_traffic(ad, top, served=600, clicks=60, relevance=0.9)
    side_imps = log_traffic(ad, side, served=600, clicks=60)
    AdEvent.objects.filter(impression__in=side_imps).update(charge=Decimal("3.00"))
    update_strategy(lag_seconds=0)
    campaign.refresh_from_db()
    assert campaign.placement_weights["top"] > 1.0 > campaign.placement_weights["side"]
    assert campaign.audience_weights["close"] > 1.0 > campaign.audience_weights["broad"]
    # and a campaign that has spent its whole daily budget early in the day is paced down
    noon = timezone.localtime().replace(hour=6, minute=0, second=0, microsecond=0)
    CampaignDay.objects.update_or_create(campaign=campaign, day=noon.date(), defaults={"spent": Decimal("10")})
    shift_delivery(noon)
    campaign.refresh_from_db()
    # to the one plan serving uses too: a quarter of the day gone, plus the slack
    from adengine.conf import settings as ad_settings

    assert campaign.pacing_rate == pytest.approx(0.25 + float(ad_settings.PACING_SLACK))
    # serving reads both
    from adengine.serving import get_backend

    get_backend().invalidate()
    snap = get_backend().snapshot()
    i = snap.index_of[campaign.pk]
    assert snap.delivery_weight[top.pk][i] == pytest.approx(campaign.pacing_rate * campaign.placement_weights["top"])
    assert snap.audience_close[i] == pytest.approx(campaign.audience_weights["close"])
