"""The contextual click model: its fit recovers known weights, its off-policy gate refuses a worse candidate and
switches a better one, and the strategy job keeps the prior when there are too few clicks."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from adengine.services import click_models
from adengine.serving import click_model as cm
from adengine.serving.policy import slate_probabilities

BASE = 0.02


def _random_design(rng, n, placements=(1, 2)):
    return cm.design(
        placements,
        asset_ctr=rng.beta(2, 80, n),
        relevance=rng.random(n),
        interest=np.where(rng.random(n) < 0.4, np.nan, rng.random(n)),
        page_fit=rng.choice([0.0, 0.8, 0.9, 1.0], n),
        personalised=rng.random(n) < 0.6,
        kind=rng.choice(["home", "category", "product", "search"], n),
        position=rng.integers(0, 3, n),
        other_language=rng.random(n) < 0.3,
        hour=rng.random(n) * 24,
        placement_id=rng.choice(placements, n),
        base_ctr=BASE,
    )


def test_the_fit_recovers_known_weights_from_a_synthetic_log():
    rng = np.random.default_rng(3)
    placements = (1, 2)
    X = _random_design(rng, 200_000, placements)
    names = cm.feature_names(placements)
    truth = np.zeros(len(names))
    for name, w in {"asset": 0.9, "relevance": 0.5, "interest": 2.0, "page_fit": 1.2, "bias": -3.6,
                    "position:2": -0.6, "page:search": 0.4}.items():  # fmt: skip
        truth[names.index(name)] = w
    y = (rng.random(len(X)) < cm.sigmoid(X @ truth)).astype(float)
    mean, precision = cm.prior(placements, base_ctr=BASE, relevance_weight=3.0)
    fitted = cm.fit(X, y, prior_mean=mean, prior_precision=precision)
    sd = np.sqrt(np.diag(fitted.cov))
    assert fitted.converged
    # every weight that is identified (the placements are collinear with the bias) within 4 posterior sd
    for i, name in enumerate(names):
        if name in ("bias",) or name.startswith("placement:"):
            continue
        assert abs(fitted.mean[i] - truth[i]) < 4 * sd[i] + 0.02, (name, fitted.mean[i], truth[i], sd[i])
    # and the predictions, including the bias + placement part, match the true click rates
    assert np.abs(cm.sigmoid(X[:2000] @ fitted.mean) - cm.sigmoid(X[:2000] @ truth)).mean() < 0.003


def test_the_prior_is_the_context_free_policy():
    mean, precision = cm.prior((5,), base_ctr=BASE, relevance_weight=3.0)
    model = cm.ClickModel(version="prior", placements=(5,), mean=mean, cov=np.diag(1 / precision), base_ctr=BASE)
    x = model.const(personalised=True, kind="home", position=0, other_language=False, hour=12.0, placement_id=5)
    # a relevant ad's odds are exp(3 x 0.3) those of an average one, whatever the shopper's interest alone says
    logits = model.mean_logit(x, [0.02, 0.02], [0.8, 0.5], [0.1, 0.9], [0.8, 0.0])
    assert logits[0] - logits[1] == pytest.approx(0.9)
    assert cm.sigmoid(model.mean_logit(x, [0.02], [0.5], [np.nan], [0.5]))[0] == pytest.approx(0.02, rel=0.2)


def test_the_serving_score_is_the_design_matrix_times_the_weights():
    """mean_logit (written out term by term for serving) equals the features the model was fitted on, times its
    mean weights, for any weights, NaN interest (not personalised) included; and the snapshot's kept logits give
    the same answer."""
    rng = np.random.default_rng(7)
    placements = (1, 2)
    n = 500
    inputs = dict(asset_ctr=rng.beta(2, 80, n), relevance=rng.random(n),
                  interest=np.where(rng.random(n) < 0.4, np.nan, rng.random(n)), page_fit=rng.random(n))  # fmt: skip
    const = dict(personalised=True, kind="product", position=0, other_language=False, hour=9.5, placement_id=2)
    X = cm.design(placements, **inputs, **{k: np.full(n, v) for k, v in const.items()}, base_ctr=BASE)
    for weights in (rng.normal(size=X.shape[1]), np.r_[rng.normal(size=2), 0.0, rng.normal(size=X.shape[1] - 3)]):
        model = cm.ClickModel(version="w", placements=placements, mean=weights, cov=np.eye(len(weights)), base_ctr=BASE)
        x = model.const(**const)
        expected = X @ weights
        np.testing.assert_allclose(model.mean_logit(x, *inputs.values()), expected, rtol=1e-10, atol=1e-10)
        kept = cm.logit(inputs["asset_ctr"])
        np.testing.assert_allclose(model.mean_logit(x, None, *list(inputs.values())[1:], asset_logit=kept), expected,
                                   rtol=1e-10, atol=1e-10)  # fmt: skip


def test_too_few_data_are_refused_with_a_reason():
    with pytest.raises(cm.FitError, match="labels 0 or 1"):
        cm.fit(np.ones((3, 2)), np.array([0, 2, 1]), prior_mean=np.zeros(2), prior_precision=np.ones(2))
    with pytest.raises(cm.FitError, match="prior over 3"):
        cm.fit(np.ones((3, 2)), np.array([0, 1, 1]), prior_mean=np.zeros(3), prior_precision=np.ones(3))


def _logged(rng, n_slates: int, logging_model: cm.ClickModel, true_weights: np.ndarray, placements, epsilon=0.2):
    """A held-out log of one-slot slates among four campaigns, chosen by ``logging_model``'s Thompson policy with
    exact propensities; clicks drawn from the true model, in which the shopper's interest matters most."""
    rows = {k: [] for k in ("decision", "creative", "clicked", "propensity")}
    slates = {}
    for s in range(n_slates):
        k = 4
        alpha, beta = np.full(k, 2.0), np.full(k, 98.0)
        rel, interest, page = rng.random(k), rng.random(k), np.zeros(k)
        cand = {"c": list(range(100 * s, 100 * s + k)), "g": list(range(k)), "a": alpha.tolist(),
                "b": beta.tolist(), "v": [1.0] * k, "r": rel.tolist(), "i": interest.tolist(), "p": page.tolist(),
                "e": epsilon, "n": 1}  # fmt: skip
        x = logging_model.const(personalised=True, kind="home", position=0, other_language=False, hour=12.0,
                                placement_id=placements[0])  # fmt: skip
        sampler = logging_model.sampler(alpha=alpha, beta=beta, x_const=x, relevance=rel, interest=interest,
                                        page_fit=page)  # fmt: skip
        probs = slate_probabilities(rng, sampler=sampler, weight=np.ones(k), group=np.arange(k), n=1,
                                    epsilon=epsilon, draws=400)[0]  # fmt: skip
        chosen = int(rng.choice(k, p=probs / probs.sum()))
        design = cm.design(placements, asset_ctr=[0.02], relevance=[rel[chosen]], interest=[interest[chosen]],
                           page_fit=[0.0], personalised=[True], kind=["home"], position=[0], other_language=[False],
                           hour=[12.0], placement_id=[placements[0]], base_ctr=BASE)  # fmt: skip
        slates[s] = cand
        rows["decision"].append(str(uuid.uuid4()))
        rows["creative"].append(cand["c"][chosen])
        rows["clicked"].append(float(rng.random() < cm.sigmoid(design @ true_weights)[0]))
        rows["propensity"].append(probs[chosen])
    n = n_slates
    return click_models.LoggedImpressions(
        decision=np.array(rows["decision"], dtype=object),
        creative=np.array(rows["creative"]),
        relevance=np.full(n, 0.5),
        position=np.zeros(n, dtype=np.int64),
        other_language=np.zeros(n, bool),
        personalised=np.ones(n, bool),
        placement=np.full(n, placements[0]),
        hour=np.full(n, 12.0),
        asset_ctr=np.full(n, 0.02),
        page_fit=np.zeros(n),
        interest=np.full(n, 0.5),
        kind=np.array(["home"] * n, dtype=object),
        propensity=np.array(rows["propensity"]),
        house=np.zeros(n, bool),
        clicked=np.array(rows["clicked"]),
        slates=slates,
    )


def test_the_gate_refuses_a_worse_candidate_and_switches_a_better_one():
    rng = np.random.default_rng(11)
    placements = (1,)
    names = cm.feature_names(placements)
    mean, precision = cm.prior(placements, base_ctr=BASE, relevance_weight=3.0)
    live = cm.ClickModel(version="prior", placements=placements, mean=mean, cov=np.diag(1 / precision), base_ctr=BASE)
    # the truth: interest decides clicks, the relevance the live model ranks by does not
    truth = np.zeros(len(names))
    truth[names.index("bias")], truth[names.index("asset")], truth[names.index("interest")] = np.log(0.05 / 0.95), 1, 4
    data = _logged(rng, 2500, live, truth, placements)
    gate = click_models.gate_log(data, np.arange(len(data)), max_slates=5000)
    assert gate is not None and len(gate.log) == 2500

    def model(weights, version):
        return cm.ClickModel(version=version, placements=placements, mean=weights, cov=np.eye(len(names)) * 1e-4,
                             base_ctr=BASE)  # fmt: skip

    better = click_models.evaluate_models(model(truth, "better"), live, data, gate, seed=1)
    worse_weights = truth.copy()
    worse_weights[names.index("interest")] = -4.0
    worse = click_models.evaluate_models(model(worse_weights, "worse"), live, data, gate, seed=1)
    # then the better candidate's lower bounds beat the live estimates and it would switch; the worse never
    assert better["switch"], better
    assert not worse["switch"], worse
    assert worse["candidate"]["dr"]["value"] < worse["live"]["dr"]["value"]
    assert better["candidate"]["snipw"]["ci_low"] > better["live"]["snipw"]["value"]


# ------------------------------------------------------------------------------------------------- the strategy job


@pytest.fixture
def served(placement, make_campaign):
    """Two campaigns served 120 times on the home page by the live engine (impressions carry their features)."""
    from adengine.serving import PageContext, decide

    make_campaign(), make_campaign()
    ads = []
    for _ in range(120):
        ads.extend(decide(placement_key=placement.key, shopper=None, context=PageContext(page="home")).ads)
    return ads


def _click(impressions):
    from decimal import Decimal

    from adengine.models import AdEvent

    AdEvent.objects.bulk_create(
        [AdEvent(impression=i, impression_served_at=i.served_at, campaign_id=i.campaign_id, kind="click",
                 status="accepted", charge=Decimal("0.10"), occurred_at=i.served_at) for i in impressions]
    )  # fmt: skip


@pytest.mark.django_db
def test_a_fit_on_too_few_clicks_keeps_the_prior_and_says_so(served):
    from adengine.models import ClickModel, Impression, StrategyState
    from adengine.serving import get_backend

    first = Impression.objects.order_by("pk").first()
    assert {"asset_ctr", "kind", "slate", "model"} <= set(first.context) and first.policy == "contextual-v1"
    _click(Impression.objects.all()[:3])
    result = click_models.refit(force=True)
    assert result["click_model"] == "kept"
    assert "kept the prior" in result["note"] and "fewer than CLICK_MODEL_MIN_CLICKS (50)" in result["note"]
    assert not ClickModel.objects.exists()
    assert StrategyState.objects.get().click_model_note == result["note"]
    assert get_backend().snapshot().click_model.version == "prior"
    # and it is not tried again before it is due
    assert click_models.refit()["click_model"] == "not due"


@pytest.mark.django_db
def test_the_click_models_page_says_what_the_last_fit_did(served, client):
    from adengine.models import Impression
    from tests.factories import UserFactory

    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    page = client.get("/admin/adengine/clickmodel/").content.decode()
    assert "No click model fitted yet: serving uses the prior" in page
    _click(Impression.objects.all()[:3])
    click_models.refit(force=True)
    page = client.get("/admin/adengine/clickmodel/").content.decode()
    assert "kept the prior (the context-free policy): " in page and "fewer than CLICK_MODEL_MIN_CLICKS" in page


@pytest.mark.django_db
def test_a_candidate_that_cannot_be_evaluated_is_never_switched_on(served):
    from adengine.models import ClickModel, Impression
    from tests.conftest import adengine_settings

    _click(Impression.objects.all()[:40])
    with adengine_settings(CLICK_MODEL_MIN_CLICKS=10, CLICK_MODEL_GATE_MIN_RECORDS=10_000):
        result = click_models.refit(force=True)
    row = ClickModel.objects.get()
    assert result["click_model"] == row.status == ClickModel.Status.REFUSED
    assert "not evaluated, so not switched on" in row.decision
    assert "CLICK_MODEL_GATE_MIN_RECORDS (10000)" in row.decision
    assert row.clicks <= 40 and row.impressions > 0 and len(row.mean) == len(row.evaluation["weights"])


@pytest.mark.django_db
def test_an_evaluated_candidate_has_its_figures_and_a_live_one_is_served(served, placement, client):
    from django.urls import reverse

    from adengine.models import ClickModel, Impression
    from adengine.serving import PageContext, decide, get_backend
    from tests.conftest import adengine_settings
    from tests.factories import UserFactory

    _click(Impression.objects.all()[:40])
    with adengine_settings(CLICK_MODEL_MIN_CLICKS=10, CLICK_MODEL_GATE_MIN_RECORDS=10, CLICK_MODEL_GATE_DRAWS=50):
        click_models.refit(force=True)
    row = ClickModel.objects.get()
    assert row.evaluation["records"] >= 10 and {"dr", "snipw"} <= set(row.evaluation["candidate"])
    assert row.decision.startswith(("switched on", "refused")) and "held-out impressions" in row.decision
    # the admin shows the gate's figures
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    page = client.get(reverse("admin:adengine_clickmodel_change", args=[row.pk])).content.decode()
    assert "Off-policy gate" in page and "SNIPW" in page and "<td>interest</td>" in page
    # a live model is what serving samples from (its version logged with each impression)
    ClickModel.objects.update(status=ClickModel.Status.LIVE)
    get_backend().invalidate()  # (another process's switch: seen at the next index check)
    (ad,) = decide(placement_key=placement.key, shopper=None, context=PageContext(page="home")).ads
    assert Impression.objects.get(nonce=ad.nonce).context["model"] == row.version
