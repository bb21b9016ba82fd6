"""A decision's candidate pool: the page's shortlist gives exactly the pool that scoring every campaign gives, the
page's scores are kept for shoppers who are not personalised, and the repeat decay is kept up to date."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from adengine.serving import PageContext, candidates, decide, get_backend
from adengine.serving.candidates import PageScores, candidate_pool, rank_shortlist, score_page
from adengine.serving.experiments import default_params
from tests.conftest import adengine_settings

from .conftest import unit


def _brute(expected, ok, decay, m):
    values = expected * decay
    allowed = np.flatnonzero(ok & np.isfinite(values))
    return np.sort(values[allowed])[::-1][:m]


@pytest.mark.parametrize("seed", range(6))
def test_the_shortlist_gives_the_pool_every_campaign_would(seed, monkeypatch):
    rng = np.random.default_rng(seed)
    n = 2_000
    expected = rng.lognormal(size=n)
    expected[rng.random(n) < 0.01] = -np.inf  # a campaign that cannot be valued
    ok = rng.random(n) < 0.7
    fallbacks = []
    full_top = candidates.top
    monkeypatch.setattr(candidates, "top", lambda *a: fallbacks.append(1) or full_top(*a))
    for m in (1, 5, 37):
        shortlist, complete = rank_shortlist(expected, ok, 4 * m)
        page = PageScores(scoring=None, ok=ok, expected=expected, shortlist=shortlist, complete=complete)
        best = shortlist[: 4 * m]
        for label, seen in (
            ("none", np.zeros(0, np.int64)),
            ("a few of the best", best[: m + 1]),
            ("most of the shortlist", best[: 3 * m + 1]),
            ("all of it and more", np.concatenate([best, rng.choice(n, 50)])),
            ("random", rng.choice(n, 200)),
        ):
            decay = np.ones(n)
            decay[seen] = 0.8 ** rng.integers(1, 6, len(seen))
            fallbacks.clear()
            pool, values = candidate_pool(page, decay, m)
            assert np.allclose(np.sort(values)[::-1], _brute(expected, ok, decay, m)), (m, label)
            assert np.allclose(values, expected[pool] * decay[pool]) and ok[pool].all()
            undecayed = np.count_nonzero(decay[shortlist] >= 1.0)
            assert bool(fallbacks) == (undecayed < m), (m, label)  # the shortlist served whenever it was exact
        pool, values = candidate_pool(page, 1.0, m)  # an anonymous visitor: no decay
        assert np.allclose(np.sort(values)[::-1], _brute(expected, ok, 1.0, m))


def test_a_complete_shortlist_serves_whatever_the_decay():
    expected = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    ok = np.array([True, True, False, True, True])
    shortlist, complete = rank_shortlist(expected, ok, 10)
    assert complete and shortlist.tolist() == [0, 1, 3, 4]
    page = PageScores(scoring=None, ok=ok, expected=expected, shortlist=shortlist, complete=complete)
    decay = np.array([0.1, 0.1, 1.0, 0.1, 1.0])
    pool, values = candidate_pool(page, decay, 2)
    assert sorted(pool.tolist()) == [0, 4] and np.allclose(sorted(values), [0.5, 1.0])


@pytest.mark.django_db
def test_a_real_page_scored_with_and_without_its_shortlist_gives_the_same_pool(placement, make_campaign):
    # given forty campaigns with spread bids and targets, on a page with no relevance floor
    [make_campaign(bid=Decimal(f"{0.2 + 0.1 * i:.2f}"), target=unit(i)) for i in range(40)]
    snap = get_backend().snapshot()
    params = default_params()
    pl = snap.placements[placement.key]
    context = PageContext(page="home")
    kw = dict(lang="en", default_lang="en", kind="home", hour=10.5)
    from adengine.serving.eligibility import eligible

    ok = eligible(snap, pl, "en", "en")
    m = 5
    short = score_page(snap, ok, pl, context, (), params, **kw, shortlist=4 * m)
    full = score_page(snap, ok, pl, context, (), params, **kw)
    assert not short.complete and len(short.shortlist) == 4 * m
    assert np.array_equal(short.expected, full.expected, equal_nan=True)
    rng = np.random.default_rng(0)
    ranked = np.argsort(-np.where(full.ok, full.expected, -np.inf))
    for seen in (0, 3, 12, 18, 30):  # the shopper saw some of the best campaigns today (past 15: not exact)
        decay = np.ones(len(snap.campaigns))
        decay[ranked[:seen]] = 0.4 ** rng.integers(1, 4, seen)
        a, va = candidate_pool(short, decay, m)
        b, vb = candidate_pool(full, decay, m)
        assert sorted(a.tolist()) == sorted(b.tolist()) and np.allclose(sorted(va), sorted(vb))


@pytest.mark.django_db
@pytest.mark.parametrize("policy", ["contextual", "thompson"])
def test_a_page_that_leaves_few_campaigns_values_those_as_scoring_every_one_would(placement, make_campaign, policy):
    import dataclasses

    # given forty campaigns, of which a page's floor or audience leaves a few
    [make_campaign(bid=Decimal(f"{0.2 + 0.1 * i:.2f}"), target=unit(i)) for i in range(40)]
    snap = get_backend().snapshot()
    params = dataclasses.replace(default_params(), policy=policy)
    pl = snap.placements[placement.key]
    from adengine.serving.eligibility import eligible

    kw = dict(lang="en", default_lang="en", kind="home", hour=10.5)
    page = score_page(snap, eligible(snap, pl, "en", "en"), pl, PageContext(page="home"), (), params, **kw)
    every = page.scoring.expected(snap, "en")
    rng = np.random.default_rng(2)
    for share in (0.05, 0.3, 0.49, 0.5, 0.9):
        ok = rng.random(len(snap.campaigns)) < share
        # then those are valued exactly as when every campaign is scored, and the others are left unvalued
        values = candidates._expected(page.scoring, snap, "en", ok)
        assert np.array_equal(values[ok], every[ok])
        assert np.isnan(values[~ok]).all() or 2 * ok.sum() >= len(ok)


@pytest.mark.django_db
def test_the_page_scores_are_kept_for_anonymous_visitors_only_while_eligibility_holds(placement, make_campaign):
    for i in range(5):
        make_campaign(target=unit(i))
    engine = get_backend()
    decide(placement_key=placement.key, shopper=None, context=PageContext(page="home"))
    (first,) = engine.pages.entries.values()
    decide(placement_key=placement.key, shopper=None, context=PageContext(page="home"))
    assert list(engine.pages.entries.values()) == [first]  # the same page: its scores again
    decide(placement_key=placement.key, shopper=None, context=PageContext(page="search", query="shoes"))
    assert len(engine.pages.entries) == 2  # another page: its own
    # once the eligibility they came from is no longer current, a page is scored again
    snap = engine.snapshot()
    snap.eligible_cache.clear()
    decide(placement_key=placement.key, shopper=None, context=PageContext(page="home"))
    home = [p for p in engine.pages.entries.values() if p.scoring.kind == "home"]
    assert len(home) == 1 and home[0] is not first


@pytest.mark.django_db
def test_personalised_decisions_do_not_use_the_page_cache(placement, make_campaign, shopper_with):
    make_campaign(target=unit(1))
    engine = get_backend()
    decide(placement_key=placement.key, shopper=shopper_with(unit(1)), context=PageContext(page="home"))
    assert not engine.pages.entries


@pytest.mark.django_db
def test_the_repeat_decay_kept_up_to_date_equals_one_computed_afresh(placement, make_campaign, shopper_with):
    # given ten campaigns and a shopper who sees many ads today
    for i in range(10):
        make_campaign(bid=Decimal(f"{1 + i % 3}.00"), target=unit(i))
    shopper = shopper_with()
    engine = get_backend()
    with adengine_settings(SERVING_REPEAT_DECAY=0.7):
        for _ in range(25):
            decide(placement_key=placement.key, shopper=shopper)
            snap = engine.snapshot()
            kept = engine._repeat_decay(snap, shopper)
            seen = engine.seen_today.get(shopper.pk)
            assert seen.derived is not None and not seen.changed
            expected = np.ones(len(snap.campaigns))
            for cid, count in seen.items():
                expected[snap.index_of[cid]] = 0.7**count
            assert np.allclose(kept, expected)
            assert not kept.flags.writeable  # what a decision got is never changed under it
        assert sum(seen.values()) == 25


@pytest.mark.django_db
def test_decisions_of_a_kept_page_share_its_prepared_slate_while_their_candidates_and_decay_agree(
    placement, make_campaign, shopper_with
):
    from adengine.models import Impression
    from adengine.serving.engine import _prepare

    # given a page of eight campaigns, seen by shoppers who are not personalised
    for i in range(8):
        make_campaign(bid=Decimal(f"{1 + i % 3}.00"), target=unit(i))
    engine = get_backend()
    first, second = shopper_with(), shopper_with()
    with adengine_settings(SERVING_REPEAT_DECAY=0.5, SERVING_LOG_MODE="sync"):
        decide(placement_key=placement.key, shopper=first)
        (page,) = engine.pages.entries.values()
        (prepared,) = page.slates.values()
        # then another new shopper of the page competes over the same candidates: the same preparation is drawn from
        decide(placement_key=placement.key, shopper=second)
        assert list(page.slates.values()) == [prepared]
        # and it is what preparing afresh gives: the logged candidate set and the sampler's inputs
        snap = engine.snapshot()
        sponsored = np.sort(prepared.group[np.r_[True, prepared.group[1:] != prepared.group[:-1]]])
        params = default_params()
        fresh = _prepare(snap, sponsored, page.scoring, lang="en", default_lang="en", n=placement.max_ads,
                         params=params)  # fmt: skip
        assert fresh.cand == prepared.cand and np.array_equal(fresh.weight, prepared.weight)
        assert np.array_equal(fresh.slate_group, prepared.slate_group)
        # and both decisions logged that candidate set
        slates = [i.context["slate"] for i in Impression.objects.order_by("pk") if "slate" in i.context]
        assert slates == [prepared.cand, prepared.cand]
        # when the first shopper comes back, the campaign they saw counts less: a preparation of its own
        seen = dict(engine.seen_today.get(first.pk))
        decide(placement_key=placement.key, shopper=first)
        assert len(page.slates) == 2
        again = [i.context["slate"] for i in Impression.objects.order_by("pk") if "slate" in i.context][-1]
        back = [c for c in seen if c in again["g"] and c in prepared.cand["g"]]
        assert back  # eight campaigns: those they saw compete again, each at half its value per view
        for c in back:
            before = prepared.cand["v"][prepared.cand["g"].index(c)]
            assert again["v"][again["g"].index(c)] == pytest.approx(before * 0.5 ** seen[c], rel=1e-5)


@pytest.mark.django_db
def test_a_shopper_who_saw_only_house_ads_has_no_repeat_decay(placement, make_campaign, shopper_with):
    from adengine.models import Campaign

    # given a shop whose only campaign is a house ad, and a shopper who has seen it today
    make_campaign(tier=Campaign.Tier.HOUSE, bid=Decimal(0), total_budget=Decimal(0))
    shopper = shopper_with()
    engine = get_backend()
    with adengine_settings(SERVING_REPEAT_DECAY=0.5):
        assert decide(placement_key=placement.key, shopper=shopper).ads
        assert engine.seen_today.get(shopper.pk)
        # then their decay is none at all, as for a shopper who saw nothing (house ads are exempt)
        decay = engine._repeat_decay(engine.snapshot(), shopper)
        assert np.isscalar(decay) and decay == 1.0
