"""A/B experiments: stable assignment, arms applied in serving, holdout, per-arm statistics and significance."""

from __future__ import annotations

from collections import Counter

import pytest
from django.core.exceptions import ValidationError

from adengine.models import Experiment, Impression
from adengine.models.experiments import validate_arms
from adengine.selectors.experiments import experiment_report, z_test
from adengine.serving import decide
from adengine.serving.experiments import ExperimentEntry, assign, unit_hash
from tests.factories import CreativeFactory, ShopperFactory

ARMS = ({"name": "control", "weight": 1}, {"name": "explore", "weight": 3, "settings": {"SERVING_EXPLORATION": 1.0}})


def test_assignment_is_stable_and_follows_the_weights():
    exp = ExperimentEntry(1, "t", None, 0.1, "salt-a", ARMS)
    first = [assign(exp, f"s{i}") for i in range(8000)]
    assert first == [assign(exp, f"s{i}") for i in range(8000)]  # same unit, same arm, every time
    share = Counter(first)
    assert share["holdout"] / 8000 == pytest.approx(0.1, abs=0.015)
    assert share["explore"] / share["control"] == pytest.approx(3.0, rel=0.1)
    # another experiment (another salt) splits independently
    other = ExperimentEntry(2, "u", None, 0.0, "salt-b", ARMS)
    agree = sum(assign(other, f"s{i}") == a for i, a in enumerate(first) if a != "holdout")
    assert agree / sum(1 for a in first if a != "holdout") < 0.7
    assert 0 <= unit_hash("x", "y") < 1


def test_arms_are_validated():
    with pytest.raises(ValidationError, match="at least two"):
        validate_arms([{"name": "a", "weight": 1}])
    with pytest.raises(ValidationError, match="may only override"):
        validate_arms([{"name": "a"}, {"name": "b", "settings": {"DEBUG": True}}])
    with pytest.raises(ValidationError, match="taken"):
        validate_arms([{"name": "a"}, {"name": "holdout"}])
    with pytest.raises(ValidationError, match="positive"):
        validate_arms([{"name": "a", "weight": 0}, {"name": "b"}])
    validate_arms(list(ARMS))


@pytest.mark.django_db
def test_serving_applies_each_shoppers_arm_and_the_holdout_sees_no_sponsored_ads(placement, make_campaign):
    # given a sponsored campaign with two headlines, a house ad and a running experiment with a holdout
    campaign = make_campaign(headlines=0)
    a, b = CreativeFactory(campaign=campaign), CreativeFactory(campaign=campaign)
    make_campaign(tier="house", bid=0, total_budget=0)
    exp = Experiment.objects.create(
        name="creative set", status="running", holdout=0.2, arms=[
            {"name": "only-a", "weight": 1, "creatives": [a.pk]},
            {"name": "only-b", "weight": 1, "creatives": [b.pk]},
        ],
    )  # fmt: skip
    # when many shoppers see the placement
    arms_seen = Counter()
    for _ in range(120):
        shopper = ShopperFactory()
        (ad,) = decide(placement_key=placement.key, shopper=shopper).ads
        imp = Impression.objects.get(nonce=ad.nonce)
        arm = imp.context["arm"]
        arms_seen[arm] += 1
        # then each arm shows only its creative set, and the holdout only the house ad
        if arm == "only-a":
            assert imp.creative_id == a.pk
        elif arm == "only-b":
            assert imp.creative_id == b.pk
        else:
            assert arm == "holdout" and ad.house
        assert imp.context["experiment"] == exp.pk
        # a shopper stays in their arm
        (again,) = decide(placement_key=placement.key, shopper=shopper).ads
        assert Impression.objects.get(nonce=again.nonce).context["arm"] == arm
    assert set(arms_seen) == {"only-a", "only-b", "holdout"}
    report = experiment_report(exp)
    assert [r["arm"] for r in report] == ["only-a", "only-b", "holdout"]
    assert sum(r["impressions"] for r in report) == 240


def test_z_test():
    z, p = z_test(100, 10_000, 150, 10_000)  # 1.0 % vs 1.5 %
    assert z > 0 and p < 0.01
    z, p = z_test(100, 10_000, 104, 10_000)
    assert p > 0.5
    assert z_test(0, 0, 1, 10) == (None, None)
