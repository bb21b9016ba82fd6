"""The set-based strategy update writes exactly what the per-row one it replaced wrote (reference_strategy.py).

Both run on the same log from the same watermark, each in a savepoint that is rolled back, and every row they write
(roll-up, assets, campaigns, the watermark's result) is compared field by field, floats exactly.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
import uuid
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone

from adengine.models import AdEvent, Campaign, CampaignDay, Conversion, Creative, HourlyStats, Impression, StrategyState
from adengine.services import strategy
from tests.factories import CreativeFactory, PlacementFactory
from tests.strategy import reference_strategy

pytestmark = pytest.mark.django_db

CREATIVE_FIELDS = ("served", "clicked", "ctr_alpha", "ctr_beta", "label", "status", "updated_at")
CAMPAIGN_FIELDS = (
    "clicked", "converted", "attributed_revenue", "cvr_alpha", "cvr_beta", "revenue_per_conversion", "pacing_rate",
    "placement_weights", "audience_weights", "updated_at",
)  # fmt: skip


class Undo(Exception):
    pass


def snapshot() -> dict:
    return {
        "stats": sorted(
            HourlyStats.objects.values_list(
                "hour", "campaign_id", "creative_id", "placement_id", "arm", *strategy.COUNTERS
            ),
            key=repr,
        ),
        "creatives": {c["pk"]: c for c in Creative.objects.values("pk", *CREATIVE_FIELDS)},
        "campaigns": {c["pk"]: c for c in Campaign.objects.values("pk", *CAMPAIGN_FIELDS)},
        "state": StrategyState.objects.values("impression_id", "event_id", "conversion_id", "last_result").get(),
    }


def differences(before: dict, after: dict) -> dict:
    """Per row, the fields whose values differ: {pk: {field: (before, after)}}."""
    return {
        pk: {f: (row[f], after[pk][f]) for f in row if row[f] != after[pk][f]}
        for pk, row in before.items()
        if row != after.get(pk)
    }


def run_and_undo(update, now) -> dict:
    try:
        with transaction.atomic():
            result = update(now=now, lag_seconds=0)
            taken = snapshot()
            raise Undo
    except Undo:
        pass
    return {"result": result, **taken}


def log(rng: random.Random, creatives: list[Creative], placements, *, n: int, start: dt.datetime) -> None:
    """``n`` impressions spread over the creatives (skewed) and two hours, with views, clicks (some not counted),
    conversions (one reversed), and a share in an experiment's arms."""
    weights = [10 if i % 3 != 2 else 1 for i in range(len(creatives))]
    imps = []
    for k in range(n):
        creative = rng.choices(creatives, weights)[0]
        context = {"experiment": 7, "arm": rng.choice("ab")} if k % 5 == 0 else {}
        imps.append(
            Impression(
                decision_id=uuid.uuid4(), placement=rng.choice(placements), campaign=creative.campaign,
                creative=creative if k % 50 else None, language=creative.language, propensity=0.5,
                predicted_ctr=0.02, relevance=rng.random(), value=0.02, candidates=3, personalised=True,
                policy="test", landing_url="/", context=context,
                served_at=start + dt.timedelta(seconds=rng.uniform(0, 7200)),
            )
        )  # fmt: skip
    imps = Impression.objects.bulk_create(imps)
    events = []
    for imp in imps:
        if rng.random() < 0.5:
            events.append(AdEvent(impression=imp, impression_served_at=imp.served_at, campaign=imp.campaign,
                                  kind="view", status="accepted", charge=0, occurred_at=imp.served_at))  # fmt: skip
        if rng.random() < 0.08:
            status = rng.choice(["accepted"] * 8 + ["over_budget", "bot"])
            events.append(AdEvent(impression=imp, impression_served_at=imp.served_at, campaign=imp.campaign,
                                  kind="click", status=status, charge=Decimal("0.45") if status == "accepted" else 0,
                                  occurred_at=imp.served_at + dt.timedelta(seconds=3)))  # fmt: skip
    events = AdEvent.objects.bulk_create(events)
    clicks = [e for e in events if e.kind == "click" and e.status == "accepted"]
    for e in rng.sample(clicks, len(clicks) // 4):
        conversion = Conversion.objects.create(
            order_key=f"O{e.pk}", campaign=e.campaign, impression=e.impression, click=e,
            revenue=Decimal(rng.randint(1000, 30000)) / 100, ordered_at=e.occurred_at + dt.timedelta(seconds=30),
            reversed_at=e.occurred_at + dt.timedelta(minutes=2) if e.pk % 7 == 0 else None,
        )  # fmt: skip
        Conversion.objects.filter(pk=conversion.pk).update(created_at=conversion.ordered_at)  # recorded at once


@pytest.fixture
def shop_log(make_campaign):
    """Three campaigns: headlines in two languages, human-written and generated, scores with ties to a missing
    one, a rejected and a paused asset; one campaign with a daily budget spent early."""
    rng = random.Random(5)
    placements = [PlacementFactory(key="top"), PlacementFactory(key="side")]
    creatives = []
    for c in range(3):
        campaign = make_campaign(headlines=0, daily_budget=Decimal("20") if c == 0 else None)
        scores = itertools.cycle([0.91, None, 0.55, 0.72, 0.30, 0.64])
        for k in range(6):
            creatives.append(
                CreativeFactory(
                    campaign=campaign, language="en" if k < 4 else "zh", score=next(scores),
                    source=Creative.Source.HUMAN if k % 3 == 0 else Creative.Source.GENERATED,
                )
            )  # fmt: skip
        CreativeFactory(campaign=campaign, status=Creative.Status.REJECTED, score=0.99)
        CreativeFactory(campaign=campaign, status=Creative.Status.PAUSED, score=0.1)
    CreativeFactory(campaign=make_campaign(headlines=0), score=0.5)  # a campaign without traffic
    return rng, creatives, placements


def test_the_set_based_update_writes_what_the_per_row_one_wrote(shop_log):
    rng, creatives, placements = shop_log
    now = timezone.now().replace(microsecond=0)
    # given a log already rolled up once (so the roll-up's rows, counters and labels exist) ...
    log(rng, creatives, placements, n=2500, start=now - dt.timedelta(hours=5))
    reference_strategy.update_strategy(now=now - dt.timedelta(hours=2, minutes=30), lag_seconds=0)
    # ... and a new stretch of it, with some of the same hours as the roll-up
    log(rng, creatives, placements, n=4000, start=now - dt.timedelta(hours=2, minutes=30))
    CampaignDay.objects.create(campaign=creatives[0].campaign, day=timezone.localdate(now), spent=Decimal("19"))
    # when both implementations process it from the same watermark
    before = run_and_undo(reference_strategy.update_strategy, now)
    after = run_and_undo(strategy.update_strategy, now)
    # then they wrote the same rows
    assert before["result"]["impressions"] == 4000 and before["result"]["campaigns"] == 3
    assert before["result"]["conversions"] > 0
    labels = {c["label"] for c in before["creatives"].values()}
    assert {"BEST", "LEARNING"} <= labels and labels & {"GOOD", "LOW"}  # posterior draws were compared too
    assert after["result"] == before["result"]
    assert after["stats"] == before["stats"]
    assert differences(before["campaigns"], after["campaigns"]) == {}
    changed = differences(before["creatives"], after["creatives"])
    # the one intended difference: a relabelled asset's updated_at is the update's ``now`` (it was the wall clock)
    relabelled = {pk for pk, d in changed.items() if set(d) == {"updated_at"} and d["updated_at"][1] == now}
    assert relabelled and all(before["creatives"][pk]["updated_at"] > now for pk in relabelled)
    assert {pk: d for pk, d in changed.items() if pk not in relabelled} == {}
    assert after["state"] == before["state"]


def test_a_second_window_adds_to_the_first_as_before(shop_log):
    rng, creatives, placements = shop_log
    now = timezone.now().replace(microsecond=0)
    log(rng, creatives, placements, n=1500, start=now - dt.timedelta(hours=3))
    # when each implementation runs twice (two windows), from the same start
    results = {}
    for name, update in (("before", reference_strategy.update_strategy), ("after", strategy.update_strategy)):
        try:
            with transaction.atomic():
                update(now=now - dt.timedelta(hours=1, minutes=30), lag_seconds=0)
                results[name] = {"result": update(now=now, lag_seconds=0), **snapshot()}
                raise Undo
        except Undo:
            pass
    # then the final state is the same (the assets' updated_at aside: see above)
    for name in results:
        for row in results[name]["creatives"].values():
            del row["updated_at"]
    assert results["after"] == results["before"]
