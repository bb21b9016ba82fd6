"""The decision engine: eligibility, page context, personalisation and consent, house ads, the log."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from decimal import Decimal

import numpy as np
import pytest
from django.utils import timezone

from adengine.models import Campaign, CampaignDay, Impression
from adengine.serving import PageContext, UnknownPlacement, decide, get_backend
from tests.conftest import adengine_settings
from tests.factories import PlacementFactory, ProductFactory

from .conftest import DIMS, unit

pytestmark = pytest.mark.django_db


def served(placement, shopper=None, context=None, runs=1, **kw):
    """Campaign ids shown over ``runs`` decisions."""
    seen = Counter()
    for _ in range(runs):
        for ad in decide(placement_key=placement.key, shopper=shopper, context=context, **kw).ads:
            seen[ad.campaign_id] += 1
    return seen


def test_unknown_placement_raises(placement):
    with pytest.raises(UnknownPlacement):
        decide(placement_key="nowhere", shopper=None)


def test_decision_is_logged_with_propensity_and_context(placement, make_campaign, shopper_with):
    # given an active campaign with two headlines, for shoes, and a shopper
    campaign = make_campaign(headlines=2, keywords=["shoes"])
    shopper = shopper_with()
    # when an ad is chosen on a search page
    decision = decide(placement_key="home-hero", shopper=shopper, context=PageContext(page="search", query="shoes"))
    # then it is the campaign's, and its impression carries what offline evaluation needs
    (ad,) = decision.ads
    assert ad.campaign_id == campaign.pk and ad.product is not None
    imp = Impression.objects.get(nonce=ad.nonce)
    assert imp.shopper == shopper and imp.decision_id == decision.id
    assert 0 < imp.propensity <= 1 and imp.policy == "contextual-v1"
    assert imp.creative.campaign_id == campaign.pk
    assert imp.context["page"] == "search" and imp.context["query"] == "shoes"
    assert imp.landing_url == ad.product.url


@pytest.mark.parametrize(
    "fields",
    [
        {"status": Campaign.Status.PAUSED},
        {"status": Campaign.Status.DRAFT},
        {"starts_at": timezone.now() + dt.timedelta(hours=1)},
        {"ends_at": timezone.now() - dt.timedelta(minutes=1)},
        {"total_budget": Decimal("0.50")},  # less than one click at bid 1.00
    ],
    ids=["paused", "draft", "not-started", "ended", "budget-spent"],
)
def test_ineligible_campaigns_are_not_served(placement, make_campaign, fields):
    make_campaign(**fields)
    assert decide(placement_key="home-hero", shopper=None).ads == []


def test_pacing_holds_back_a_campaign_ahead_of_its_daily_plan(placement, make_campaign):
    # given a campaign that already spent its whole daily budget today (the plan allows at most that)
    campaign = make_campaign(daily_budget=Decimal("10"))
    CampaignDay.objects.create(campaign=campaign, day=timezone.localdate(), spent=Decimal("10"))
    # then it is not served until tomorrow
    assert decide(placement_key="home-hero", shopper=None).ads == []
    # and with the day's spend at zero it is
    CampaignDay.objects.filter(campaign=campaign).update(spent=0)
    from adengine.serving import get_backend

    get_backend().invalidate()
    assert len(decide(placement_key="home-hero", shopper=None).ads) == 1


def test_frequency_cap_per_shopper_per_day(placement, make_campaign, shopper_with):
    capped = make_campaign(frequency_cap=2)
    other = make_campaign()
    shopper = shopper_with()
    seen = served(placement, shopper, runs=20)
    assert seen[capped.pk] == 2 and seen[other.pk] == 18
    # another shopper still sees it
    assert served(placement, shopper_with(), runs=30)[capped.pk] >= 1


def test_placement_restriction_and_language(make_campaign):
    hero = PlacementFactory(key="home-hero")
    side = PlacementFactory(key="sidebar")
    only_side = make_campaign()
    only_side.placements.set([side])
    assert decide(placement_key="home-hero", shopper=None).ads == []
    assert decide(placement_key="sidebar", shopper=None).ads[0].campaign_id == only_side.pk
    # Chinese pages fall back to the default language's copy when a campaign has none in Chinese
    (ad,) = decide(placement_key="sidebar", shopper=None, language="zh-hans").ads
    assert ad.language == "en"
    assert hero.max_ads == 1


def test_page_context_favours_the_campaign_promoting_the_product_on_the_page(placement, make_campaign):
    shown = ProductFactory()
    match = make_campaign(product=shown)
    other = make_campaign(bid=Decimal("1.10"))  # a slightly higher bid, unrelated to the page
    seen = served(placement, context=PageContext(page="product", product=shown.pk), runs=150)
    assert seen[match.pk] > 2 * seen[other.pk]


def test_search_keywords_match_in_english_and_chinese(placement, make_campaign):
    coffee = make_campaign(keywords=["coffee beans", "咖啡豆"])
    tea = make_campaign(keywords=["green tea", "绿茶"])
    # (a matching query triples the predicted CTR; Thompson sampling from fresh priors is noisy)
    en = served(placement, context=PageContext(page="search", query="fresh Coffee"), runs=200)
    zh = served(placement, context=PageContext(page="search", query="买一些绿茶叶"), runs=200)
    assert en[coffee.pk] > 1.5 * en[tea.pk]
    assert zh[tea.pk] > 1.5 * zh[coffee.pk]


def test_a_chinese_search_finds_keywords_that_contain_its_words(placement, make_campaign):
    from adengine.serving.context import CONTEXT_QUERY, page_relevance

    # given campaigns with Chinese keywords, as English ones are written ("coffee beans", not "coffee")
    coffee = make_campaign(keywords=["coffee beans", "咖啡豆"])
    cream = make_campaign(keywords=["保湿面霜"])
    tea = make_campaign(keywords=["绿茶叶"])
    wash = make_campaign(keywords=["男士洗面奶"])
    snap = get_backend().snapshot()

    def found(query: str) -> set[int]:
        rel = page_relevance(snap, PageContext(page="search", query=query))
        return {c.id for c, r in zip(snap.campaigns, rel, strict=True) if r == CONTEXT_QUERY}

    # then a search for a word of a keyword finds it, as "coffee" finds "coffee beans"
    assert found("咖啡") == found("coffee") == {coffee.pk}
    assert found("绿茶") == {tea.pk} and found("洗面奶") == {wash.pk}  # green tea; face wash
    assert found("买一些保湿面霜") == {cream.pk}  # the whole keyword inside a longer query, as before
    # and a search that shares only a character, or one piece across a word boundary, does not: black tea is not
    # green tea, women's shampoo is not men's face wash, a wet face tissue is not a moisturising cream
    assert found("红茶") == set() and found("茶") == set() and found("咖喱") == set()
    assert found("女士洗发水") == set() and found("湿面巾") == set()


def test_interests_steer_personalised_ads(placement, make_campaign, shopper_with):
    # given two campaigns aimed at different interests, one shopper near each, and several others
    running, coffee = unit(1), unit(2)
    run_campaign = make_campaign(target=running)
    coffee_campaign = make_campaign(target=coffee)
    for seed in range(3, 6):
        make_campaign(target=unit(seed))
    runners = [shopper_with(running) for _ in range(30)]
    # when runners see a few ads each (a visit: more views of one shopper are spread over advertisers)
    seen = sum((served(placement, runner, runs=5) for runner in runners), Counter())
    # then the running campaign wins most of them, and the decisions say they were personalised
    assert seen[run_campaign.pk] > 2 * seen[coffee_campaign.pk]
    assert Impression.objects.filter(shopper__in=runners, personalised=True).count() == 150


def test_a_shoppers_visit_is_spread_over_advertisers(placement, make_campaign, shopper_with):
    # given a campaign bidding ten times another's, same click rates
    rich = make_campaign(bid=Decimal("5.00"))
    modest = make_campaign(bid=Decimal("0.50"))
    # when one shopper sees sixty ads in a day, the rich campaign takes the first views, then the other gets its
    # turns (each earlier view today discounts a campaign's value by SERVING_REPEAT_DECAY)
    seen = served(placement, shopper_with(), runs=60)
    assert seen[rich.pk] > seen[modest.pk]
    # without the session diversity the rich campaign takes nearly all (the other: exploration and chance)
    with adengine_settings(SERVING_REPEAT_DECAY=1.0):
        alone = served(placement, shopper_with(), runs=60)
    assert seen[modest.pk] >= alone[modest.pk] + 10, (seen, alone)


def test_consent_off_means_no_personalised_ads(placement, make_campaign, shopper_with):
    # given a shopper who opted out, even if an old vector were still stored
    running = unit(1)
    run_campaign = make_campaign(target=running)
    others = [make_campaign(target=unit(seed)) for seed in range(2, 6)]
    audience_only = make_campaign(target=running, audience_min_similarity=0.5)
    shopper = shopper_with(running, personalisation=False)
    # when ads are chosen
    seen = served(placement, shopper, runs=200)
    # then the interests play no part: the running campaign does no better than the others,
    # audience-restricted campaigns are not shown, and nothing is logged as personalised
    assert seen[audience_only.pk] == 0
    assert seen[run_campaign.pk] < 2 * max(seen[c.pk] for c in others)
    assert not Impression.objects.filter(shopper=shopper, personalised=True).exists()


def test_audience_threshold_limits_personalised_delivery(placement, make_campaign, shopper_with):
    target = unit(1)
    make_campaign(target=target, audience_min_similarity=0.9)
    assert decide(placement_key="home-hero", shopper=shopper_with(unit(2))).ads == []
    assert len(decide(placement_key="home-hero", shopper=shopper_with(target)).ads) == 1


def test_house_ads_fill_only_what_sponsored_ads_leave(make_campaign):
    PlacementFactory(key="home-hero", max_ads=2)
    sponsored = make_campaign()
    house = make_campaign(tier=Campaign.Tier.HOUSE, bid=Decimal(0), total_budget=Decimal(0))
    ads = decide(placement_key="home-hero", shopper=None).ads
    assert [a.campaign_id for a in ads] == [sponsored.pk, house.pk]
    assert [a.house for a in ads] == [False, True]
    # a sponsored campaign that ran out of budget leaves both slots... to the house ad (once: one per campaign)
    Campaign.objects.filter(pk=sponsored.pk).update(spent=F_total())
    from adengine.serving import get_backend

    get_backend().invalidate()
    assert [a.campaign_id for a in decide(placement_key="home-hero", shopper=None).ads] == [house.pk]


def F_total():
    from django.db.models import F

    return F("total_budget")


def test_kill_switch_and_inactive_placement(placement, make_campaign):
    make_campaign()
    with adengine_settings(SERVING_ENABLED=False):
        assert decide(placement_key="home-hero", shopper=None).ads == []
    placement.is_active = False
    placement.save()
    assert decide(placement_key="home-hero", shopper=None).ads == []


def test_hot_path_reads_few_rows(placement, make_campaign, shopper_with, django_assert_max_num_queries):
    for _ in range(5):
        make_campaign(frequency_cap=5)
    shopper = shopper_with(unit(1))
    decide(placement_key="home-hero", shopper=shopper)  # builds the index
    # a decision: the frequency-cap count and one insert of the impressions
    with django_assert_max_num_queries(2):
        decide(placement_key="home-hero", shopper=shopper)


def test_a_visit_reads_the_shopper_once_and_consent_changes_apply_at_once(django_assert_num_queries):
    from adengine.services.shoppers import get_or_create_anonymous, set_personalisation

    with adengine_settings(SHOPPER_CACHE_SECONDS=60):
        first = get_or_create_anonymous(anonymous_key="k" * 32)
        with django_assert_num_queries(0):
            assert get_or_create_anonymous(anonymous_key="k" * 32) is first
        set_personalisation(shopper=first, allowed=False)
        again = get_or_create_anonymous(anonymous_key="k" * 32)
        assert again is not first and again.personalisation is False


def _fixed_backend():
    """A shop's own decision backend (here: never any ads), named by ADENGINE["DECISION_BACKEND"]."""
    from adengine.serving import DecisionBackend
    from adengine.serving.engine import Decision
    from adengine.serving.snapshot import PlacementEntry

    class Nothing(DecisionBackend):
        calls = 0

        def decide(self, *, placement_key, shopper, **kwargs):
            Nothing.calls += 1
            return Decision(id=uuid.uuid4(), placement=PlacementEntry(0, placement_key, "text", 1, False, True),
                            personalised=False)  # fmt: skip

    return Nothing


def test_the_decision_backend_is_a_setting(client, placement, make_campaign):
    from django.urls import reverse

    from adengine.serving import get_backend
    from adengine.serving.engine import Engine
    from tests.conftest import adengine_settings

    make_campaign()
    backend = _fixed_backend()
    assert isinstance(get_backend(), Engine)
    with adengine_settings(DECISION_BACKEND=backend):
        # the storefront's slot and the API both ask the configured backend
        assert "Sponsored" not in client.get(reverse("shop:home")).content.decode()
        assert client.get("/api/adengine/v1/decisions/", {"placement": placement.key}).json()["ads"] == []
        assert backend.calls == 2 and isinstance(get_backend(), backend)
    # and the engine is back afterwards
    assert isinstance(get_backend(), Engine) and len(decide(placement_key=placement.key, shopper=None).ads) == 1


def test_out_of_stock_products_are_never_advertised_and_prices_show_their_currency(placement, make_campaign):
    from tests.conftest import adengine_settings
    from tests.factories import ProductFactory

    shoes, socks = ProductFactory(stock=3, price=Decimal("99.00")), ProductFactory(stock=5)
    campaign = make_campaign(product=shoes)
    campaign.promoted_products.add(socks)
    with adengine_settings(CURRENCY="CNY"):
        cards = {
            ad.product.pk: ad.product for _ in range(20) for ad in decide(placement_key="home-hero", shopper=None).ads
        }
        assert cards[shoes.pk].price_text("en") == "¥99.00"
        # when the shoes sell out (a save of the product: every process is told through the campaign)
        shoes.stock = 0
        shoes.save()
        shown = {ad.product.pk for _ in range(20) for ad in decide(placement_key="home-hero", shopper=None).ads}
    # then only the socks are advertised
    assert shown == {socks.pk}
    # and back in stock, the shoes are again
    shoes.stock = 2
    shoes.save()
    shown = {ad.product.pk for _ in range(40) for ad in decide(placement_key="home-hero", shopper=None).ads}
    assert shoes.pk in shown


def test_a_product_in_several_categories_matches_each(placement, make_campaign):
    from adengine.serving import get_backend
    from adengine.serving.context import CONTEXT_CATEGORY, page_relevance

    campaign = make_campaign(categories=["trail"])
    snap = get_backend().snapshot()
    i = snap.index_of[campaign.pk]
    # a product page whose product is filed under road and trail: the trail campaign fits it
    assert page_relevance(snap, PageContext(page="product"), ("road", "trail"))[i] == CONTEXT_CATEGORY
    assert page_relevance(snap, PageContext(page="product"), ("road",))[i] == 0
    # and the default adapter reads every category of a product filed in several (a many-to-many `categories`)
    from types import SimpleNamespace

    from adengine.adapters import get_adapter

    road, trail = SimpleNamespace(slug="road"), SimpleNamespace(slug="trail")
    product = SimpleNamespace(category=road, categories=SimpleNamespace(all=lambda: [road, trail]))
    assert get_adapter().category_keys(product) == ("road", "trail")


def test_interest_is_where_the_shopper_stands_in_each_campaigns_audience(placement, make_campaign, shopper_with):
    from adengine.models import Shopper
    from adengine.serving import get_backend

    # given a campaign every shopper of the shop resembles (a broad target) and a niche one
    common, niche = unit(1), unit(2)
    broad_campaign = make_campaign(target=common)
    niche_campaign = make_campaign(target=niche)
    rng = np.random.default_rng(0)

    def mix(a, b, noise):
        v = a * 0.8 + b + rng.normal(0, noise, DIMS).astype(np.float32)
        return (v / np.linalg.norm(v)).astype(np.float32)

    Shopper.objects.bulk_create(
        [Shopper(anonymous_key=f"crowd-{i}", interest_vector=mix(common, 0, 0.05)) for i in range(300)]
    )
    # and a shopper as close to the broad campaign as the crowd, but much closer to the niche one than they are
    shopper = shopper_with(mix(common, 0.9 * niche, 0.05))
    get_backend().invalidate()
    decide(placement_key=placement.key, shopper=shopper)
    ctx = Impression.objects.filter(shopper=shopper).latest("pk").context
    snap = get_backend().snapshot()
    assert snap.audience_mean is not None  # the crowd is a sample of the audience
    # then the broad campaign's fit is about the average shopper's, the niche one's far above its audience
    assert ctx["interest"] is not None
    interest = np.clip(
        0.5 + 0.25 * (snap.targets @ shopper.interest_vector - snap.audience_mean) / snap.audience_sd, 0, 1
    )
    i_broad, i_niche = snap.index_of[broad_campaign.pk], snap.index_of[niche_campaign.pk]
    assert interest[i_niche] > 0.9 and interest[i_broad] < interest[i_niche]
    # and it is the niche campaign that the shopper is shown (session diversity aside)
    # (the prior's weights are drawn too, so the broad one wins now and then: a clear majority, not all)
    with adengine_settings(SERVING_REPEAT_DECAY=1.0):
        shown = served(placement, shopper, runs=40)
    assert shown[niche_campaign.pk] >= 24, shown


def test_a_generated_description_never_replaces_the_human_one_on_its_score(placement, make_campaign):
    from adengine.models import Creative
    from adengine.serving import get_backend
    from tests.factories import CreativeFactory

    campaign = make_campaign()
    human = CreativeFactory(campaign=campaign, asset_type="description", source="human", score=0.2,
                            text="Trail running shoes for wet paths.")  # fmt: skip
    CreativeFactory(campaign=campaign, asset_type="description", source="generated", score=0.95,
                    text="Trail running shoes, trail running, shoes.")  # fmt: skip
    assert Creative.objects.filter(campaign=campaign, asset_type="description", status="approved").count() == 2
    get_backend().invalidate()
    ads = [ad for _ in range(5) for ad in decide(placement_key=placement.key, shopper=None).ads]
    assert {ad.description for ad in ads} == {human.text}
