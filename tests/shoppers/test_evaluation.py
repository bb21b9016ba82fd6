"""adengine_eval_interests and the hybrid interest model on imported data: the protocol, the JSON contract,
training that chooses its weights, fold-in of a new shopper, and clear errors."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from adengine.models import BehaviourEvent, InterestModel, ProductVector, Shopper
from adengine.selectors.audience import campaign_audience, hybrid_target
from adengine.selectors.vectors import best_products_for
from adengine.services.campaigns import campaign_target
from adengine.services.interest_model import train_interest_model
from adengine.services.interests import refresh_interests
from fixtures.demo_data import generate
from tests.factories import CampaignFactory, ProductFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def imported(tmp_path, encoder):
    paths = generate(tmp_path, customers=160, anonymous=5, days=30, seed=4, per_type=2)
    call_command("shop_import", "--no-progress", **{k: str(v) for k, v in paths.items()})
    call_command("adengine_embed", "--products", verbosity=0)


def _json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_eval_reports_the_blend_its_parts_and_baselines_with_intervals(imported, capsys):
    # when the evaluation runs on imported behaviour
    call_command("adengine_eval_interests", "--json")
    result = _json(capsys)
    # then the JSON keeps its keys and adds the new ones
    assert {"hr10", "ndcg10", "hr10_popularity", "hr10_random", "users"} <= set(result)
    assert {"hr10_ci_low", "hr10_ci_high", "components", "weights", "protocol", "mrr", "coverage"} <= set(result)
    assert not [k for k in result if k.startswith("_")]
    assert result["users"] >= 10
    assert result["hr10_ci_low"] <= result["hr10"] <= result["hr10_ci_high"]
    assert 0 <= result["ndcg10"] <= result["hr10"] <= 1
    assert set(result["components"]) == {"content", "collab", "popularity"}
    assert set(result["baselines"]) == {"random", "popularity", "recent_popularity", "cooccurrence"}
    assert sum(result["weights"].values()) == pytest.approx(1.0)
    assert result["protocol"]["bought"] == "excluded" and result["protocol"]["split"] == "time"
    # and the shopper model does much better than chance
    assert result["hr10"] > 3 * max(result["hr10_random"], 0.01)


def test_include_bought_is_reported(imported, capsys):
    call_command("adengine_eval_interests", "--json", "--include-bought", "--max-users", "15")
    result = _json(capsys)
    assert result["protocol"]["bought"] == "included"
    assert result["users"] == 15


def test_training_chooses_weights_records_figures_and_folds_in_a_new_shopper(imported):
    # given a trained, active interest model
    result = train_interest_model()
    assert result["trained"] and result["switched"]
    model = InterestModel.objects.get(is_active=True)
    assert model.metrics["validation"]["blend"]["hr10"] >= 0
    assert ProductVector.objects.exclude(hybrid=None).filter(hybrid_model=model.version).exists()
    # when a new shopper views a few products and the incremental refresh runs
    shopper = Shopper.objects.create(anonymous_key="new-shopper")
    viewed = list(ProductVector.objects.values_list("product_id", flat=True)[:3])
    now = timezone.now()
    for i, pid in enumerate(viewed):
        BehaviourEvent.objects.create(
            shopper=shopper, kind="view", product_id=pid, occurred_at=now - dt.timedelta(minutes=i), source="api"
        )
    Shopper.objects.filter(pk=shopper.pk).update(last_event_at=now)
    refresh_interests()
    shopper.refresh_from_db()
    # then it has a hybrid vector of the active model, without retraining
    assert shopper.interest_hybrid is not None and shopper.interest_hybrid_model == model.version
    assert InterestModel.objects.count() == 1
    # and one pgvector query ranks the catalog exactly as the blended score does
    top = [pk for pk, _ in best_products_for(shopper, k=5)]
    rows = list(ProductVector.objects.filter(hybrid_model=model.version).values_list("product_id", "hybrid"))
    scores = {pk: float(np.asarray(v) @ np.asarray(shopper.interest_hybrid)) for pk, v in rows}
    assert top == sorted(scores, key=lambda pk: -scores[pk])[:5]


def test_a_second_training_switches_only_when_it_beats_the_live_model(imported):
    first = train_interest_model()
    second = train_interest_model()
    # the same data and seed give the same figure: no gain, no switch
    assert not second["switched"] and "does not beat" in second["decision"]
    assert InterestModel.objects.get(is_active=True).version == first["version"]
    forced = train_interest_model(force=True)
    assert forced["switched"]


def test_too_little_behaviour_gives_content_only_and_says_why(encoder):
    products = ProductFactory.create_batch(3)
    call_command("adengine_embed", "--products", verbosity=0)
    now = timezone.now()
    for i in range(3):
        s = Shopper.objects.create(anonymous_key=f"few-{i}")
        BehaviourEvent.objects.create(
            shopper=s, kind="purchase", product=products[i], occurred_at=now, source="api", dedupe_key=f"order:{i}:x"
        )
    result = train_interest_model()
    assert result["weights"] == {"content": 1.0, "collab": 0.0, "popularity": 0.0}
    assert any("too little behaviour" in n for n in result["notes"])


def test_eval_without_data_is_a_clear_error(encoder):
    with pytest.raises(CommandError, match="no product vectors|catalog has 0|nothing to evaluate"):
        call_command("adengine_eval_interests")


def test_a_one_product_catalog_is_a_clear_error(encoder):
    ProductFactory()
    call_command("adengine_embed", "--products", verbosity=0)
    with pytest.raises(CommandError, match="ranking needs at least 2"):
        call_command("adengine_eval_interests")
    with pytest.raises(CommandError, match="not trained: the catalog has 1 product"):
        call_command("adengine_train_interests")


def test_eval_with_products_but_no_orders_is_a_clear_error(encoder):
    ProductFactory.create_batch(2)
    call_command("adengine_embed", "--products", verbosity=0)
    with pytest.raises(CommandError, match="nothing to evaluate"):
        call_command("adengine_eval_interests")


def test_bad_arguments_are_clear_errors(encoder):
    with pytest.raises(CommandError, match="--test-share"):
        call_command("adengine_eval_interests", "--test-share", "1.5")


def test_audiences_and_decisions_read_the_hybrid_model(imported):
    # given a trained model and every shopper's vectors
    train_interest_model()
    refresh_interests()
    model = InterestModel.objects.get(is_active=True)
    promoted = list(ProductVector.objects.order_by("-popularity").values_list("product_id", flat=True)[:2])
    campaign = CampaignFactory(products=promoted, keywords=["coffee"])
    # when its audience is chosen
    audience = campaign_audience(campaign, campaign_target(campaign), k=8)
    # then the shoppers are ranked by the hybrid model's fit to the campaign
    version, target = hybrid_target(campaign, campaign_target(campaign))
    assert version == model.version
    fits = [float(np.asarray(m.shopper.interest_hybrid) @ target) for m in audience]
    assert len(audience) == 8 and fits == sorted(fits, reverse=True)
    best = Shopper.objects.filter(interest_hybrid_model=version).exclude(interest_hybrid=None)
    assert fits[0] == pytest.approx(max(float(np.asarray(s.interest_hybrid) @ target) for s in best), rel=1e-4)
    # and the decision engine's snapshot places campaigns in the same space
    from adengine.serving import builder

    snap = builder.build()
    assert snap.hybrid_version == model.version and snap.hybrid_targets.shape[1] == len(target)
