"""What the request path no longer does: propensities are filled later from the logged slates, the first index
build runs in the background, and a page's slots share their shopper, decision and rendered markup."""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest
from django.template import Context, Template
from django.test import RequestFactory

from adengine.models import Impression
from adengine.serving import IndexNotReady, PageContext, decide, get_backend
from adengine.serving import builder as serving_builder
from adengine.serving.engine import Engine
from adengine.serving.policy import CONTEXTUAL, POLICY_NAME, propensities
from adengine.serving.presentation import slot_cache
from adengine.serving.propensity import ModelCache, fill, seed, slate_sampler
from tests.conftest import adengine_settings
from tests.factories import PlacementFactory, UserFactory

from .conftest import unit

pytestmark = pytest.mark.django_db


def _logged_slates(impressions):
    """(first row, [rows]) of each slate, by decision and position."""
    slates = []
    for imp in sorted(impressions, key=lambda i: (str(i.decision_id), i.position)):
        if "slate" in imp.context:
            slates.append((imp, [imp]))
        else:
            slates[-1][1].append(imp)
    return slates


@pytest.mark.parametrize("policy", ["contextual", "thompson"])
def test_filled_propensities_are_the_policys_from_the_logged_candidate_set(
    make_campaign, shopper_with, policy, monkeypatch
):
    # given impressions written as production writes them: propensity unknown (the web process computes none)
    from adengine.serving import propensity as module

    monkeypatch.setattr(module, "fill_rows", lambda rows, model=None: None)  # sync mode fills inline: not here
    PlacementFactory(key="duo", max_ads=2)
    for i in range(4):
        make_campaign(headlines=2, target=unit(i), tier="house" if i == 0 else "sponsored")
    shopper = shopper_with(unit(1))
    with adengine_settings(SERVING_POLICY=policy):
        for _ in range(6):
            decide(placement_key="duo", shopper=shopper, context=PageContext(page="home"))
    rows = list(Impression.objects.all())
    assert rows and all(math.isnan(r.propensity) for r in rows)
    # when the strategy queue's task fills them
    result = fill(impression_ids=[r.pk for r in rows])
    # then every one is known, and is exactly what the policy's sampler gives from the slate's logged inputs
    assert result == {"filled": len(rows), "unknown": 0}
    models = ModelCache()
    for first, members in _logged_slates(Impression.objects.all()):
        cand = first.context["slate"]
        assert first.policy == (CONTEXTUAL if policy == "contextual" else POLICY_NAME)
        sampler, weight, group = slate_sampler(
            cand, policy=first.policy, model=models.get(first.context.get("model")),
            personalised=first.personalised, kind=first.context["kind"], placement_id=first.placement_id,
        )  # fmt: skip
        chosen = [cand["c"].index(m.creative_id) for m in members]
        expected = propensities(
            np.random.default_rng(seed(first.decision_id, first.position)), sampler=sampler, weight=weight,
            group=group, arms=chosen, epsilon=cand["e"], draws=100,
        )  # fmt: skip
        assert [m.propensity for m in members] == pytest.approx(expected.tolist(), rel=1e-12)
        assert all(0 < m.propensity <= 1 for m in members)
    # and running it again changes nothing
    assert fill(impression_ids=[r.pk for r in rows]) == {"filled": 0, "unknown": 0}


def test_sync_mode_and_the_task_agree(make_campaign, shopper_with):
    # given a decision logged in sync mode (propensities computed before the row is written)
    PlacementFactory(key="duo", max_ads=2)
    for i in range(3):
        make_campaign(headlines=2, target=unit(i))
    decide(placement_key="duo", shopper=shopper_with(unit(2)))
    inline = dict(Impression.objects.values_list("pk", "propensity"))
    # when the same rows are filled again from the log
    Impression.objects.update(propensity=float("nan"))
    fill(impression_ids=list(inline))
    # then the numbers are the same: both compute them from the logged candidate set, seeded by the decision
    assert dict(Impression.objects.values_list("pk", "propensity")) == pytest.approx(inline, rel=1e-12)


def test_a_sweep_fills_what_a_lost_task_left_and_skips_restored_rows(placement, make_campaign):
    import datetime as dt

    from django.utils import timezone

    make_campaign(headlines=2)
    decide(placement_key=placement.key, shopper=None)
    Impression.objects.update(propensity=float("nan"))
    restored = Impression.objects.create(
        **{
            f.name: getattr(Impression.objects.get(), f.name)
            for f in Impression._meta.fields
            if f.name not in ("id", "nonce", "context", "propensity")
        },
        context={"restored": True},
        propensity=float("nan"),
    )
    result = fill(since=timezone.now() - dt.timedelta(hours=1))
    assert result == {"filled": 1, "unknown": 0}
    restored.refresh_from_db()
    assert math.isnan(restored.propensity)


@pytest.mark.django_db(transaction=True)
def test_the_first_index_build_holds_no_request_for_long(placement, make_campaign, monkeypatch):
    # given a process whose first index build is slow
    make_campaign()
    release = threading.Event()
    real_build = serving_builder.build

    def slow_build(version):
        release.wait(10)
        return real_build(version)

    monkeypatch.setattr(serving_builder, "build", slow_build)
    engine = Engine()
    with adengine_settings(SERVING_INDEX_WAIT_SECONDS=0.2):
        # when decisions arrive while it builds, they are answered "not ready" after the wait, not held
        for _ in range(2):
            with pytest.raises(IndexNotReady):
                engine.decide(placement_key=placement.key, shopper=None)
        assert engine._first_build.is_alive()  # one build, not one per request
        # then once it is built, decisions are served
        release.set()
        engine._first_build.join(10)
        assert len(engine.decide(placement_key=placement.key, shopper=None).ads) == 1


def test_the_decision_api_answers_503_with_retry_after_while_the_index_builds(client, placement, monkeypatch):
    def not_ready(**kwargs):
        raise IndexNotReady("building")

    monkeypatch.setattr(get_backend(), "decide", not_ready)
    resp = client.get("/api/adengine/v1/decisions/", {"placement": placement.key})
    assert resp.status_code == 503 and resp["Retry-After"] == "1" and "starting" in resp.json()["detail"]


def _page_request():
    request = RequestFactory().get("/p/shoes/?colour=red&size=42")
    request.session = {}
    request.user = UserFactory()
    return request


def test_slots_of_one_page_share_the_shopper_and_the_decision(placement, make_campaign, django_assert_num_queries):
    # given a page that shows the same slot twice (say, above and below a long list)
    make_campaign(headlines=2)
    slot_cache.clear()
    get_backend().snapshot()
    tpl = Template('{% load adengine %}{% ad_slot "home-hero" page="home" %}<hr>{% ad_slot "home-hero" page="home" %}')
    request = _page_request()
    # when it renders: the shopper is read once, and one decision (one impression row) serves both slots
    with django_assert_num_queries(2):  # the shopper (none here: anonymous), the impression insert
        html = tpl.render(Context({"request": request}))
    top, bottom = html.split("<hr>")
    assert "adengine-ad" in top and top == bottom
    assert Impression.objects.count() == 1


def test_slot_markup_is_kept_per_ad_and_each_view_gets_its_own_signed_urls(placement, make_campaign):
    from adengine.serving import tokens

    # given an ad shown on two page views
    make_campaign(headlines=1)
    slot_cache.clear()
    tpl = Template('{% load adengine %}{% ad_slot "home-hero" page="home" %}')
    first = tpl.render(Context({"request": _page_request()}))
    second = tpl.render(Context({"request": _page_request()}))
    # then the markup is rendered once and kept, and each view carries its own impression's URLs
    assert len(slot_cache.entries) == 1
    nonces = [str(n) for n in Impression.objects.values_list("nonce", flat=True)]
    assert len(nonces) == 2
    for html, other in ((first, second), (second, first)):
        view = html.split('class="adengine-pixel" src="')[1].split('"')[0]
        assert tokens.read("view", view.split("/ads/v/")[1].removesuffix(".gif")).nonce.hex in [
            n.replace("-", "") for n in nonces
        ]
        assert view not in other
        assert "?next=/p/shoes/%3Fcolour%3Dred%26size%3D42" in html  # "Why this ad?" leads back to the page
        assert "adengineslot" not in html
    # and with the cache off, every view renders the same markup itself
    with adengine_settings(SERVING_SLOT_CACHE=0):
        slot_cache.clear()
        third = tpl.render(Context({"request": _page_request()}))
    assert len(slot_cache.entries) == 0
    assert _without_urls(third) == _without_urls(first) and "adengine-ad" in third


def _without_urls(html: str) -> str:
    import re

    return re.sub(r'(/ads/[^"]+|data-decision="[^"]+")', "", html)


@pytest.mark.django_db(transaction=True)
def test_periodic_index_checks_run_in_the_background(placement, make_campaign, monkeypatch):
    # given a built index whose spend is due for a re-read, and a slow database
    from adengine.serving.index import IndexHolder

    make_campaign()
    holder = IndexHolder()
    snap = holder.get()
    started, release = threading.Event(), threading.Event()
    real_refresh = serving_builder.refresh_spend

    def slow_refresh(s):
        started.set()
        release.wait(10)
        real_refresh(s)

    monkeypatch.setattr(serving_builder, "refresh_spend", slow_refresh)
    with adengine_settings(SERVING_INDEX_WAIT_SECONDS=1, SERVING_SPEND_REFRESH_SECONDS=0):
        # when requests ask for it, they get the current snapshot at once while one background thread re-reads
        assert holder.get() is snap
        assert started.wait(5)
        assert holder.get() is snap and holder.checking
        spent_at = snap.spend_at
        release.set()
        deadline = time.monotonic() + 10
        while holder.checking and time.monotonic() < deadline:
            time.sleep(0.01)
    # then the spend was re-read
    assert snap.spend_at > spent_at
