"""Ad slots on storefront pages: labelled, explained, escaped, and never able to break a page."""

from __future__ import annotations

import pytest
from django.template import Context, Template
from django.test import RequestFactory
from django.urls import reverse

from adengine.models import BehaviourEvent, Shopper
from shop.celery import app
from tests.conftest import adengine_settings
from tests.factories import CategoryFactory, CreativeFactory, ProductFactory, ShopperFactory, UserFactory

from .conftest import unit
from .test_tracking import BROWSER

pytestmark = pytest.mark.django_db


def test_home_page_shows_a_labelled_sponsored_ad(client, placement, make_campaign):
    campaign = make_campaign(headlines=0)
    CreativeFactory(campaign=campaign, text="<script>alert(1)</script> Fast shoes")
    html = client.get(reverse("shop:home"), HTTP_USER_AGENT=BROWSER).content.decode()
    assert "Sponsored · " + campaign.advertiser.name in html
    assert "Why this ad?" in html and 'rel="sponsored nofollow"' in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Fast shoes" in html and "<script>alert(1)" not in html
    assert "/ads/v/" in html  # the view beacon


@pytest.mark.parametrize("page", ["category", "product", "search"])
def test_every_storefront_page_type_has_a_slot(client, make_campaign, page):
    from tests.factories import PlacementFactory

    category = CategoryFactory(slug="audio")
    product = ProductFactory(category=category)
    make_campaign(product=product, keywords=["headphones"], categories=["audio"])
    PlacementFactory(key={"category": "category-top", "product": "product-sidebar", "search": "search-top"}[page])
    url = {
        "category": reverse("shop:category", args=["audio"]),
        "product": reverse("shop:product", args=[product.sku]),
        "search": reverse("shop:search") + "?q=headphones",
    }[page]
    assert "Sponsored" in client.get(url).content.decode()


def test_unknown_placement_or_failure_renders_nothing(placement, make_campaign, monkeypatch, caplog):
    make_campaign()
    request = RequestFactory().get("/")
    request.session = {}
    request.user = UserFactory()
    tpl = Template('{% load adengine %}<p>before</p>{% ad_slot "nowhere" %}<p>after</p>')
    assert tpl.render(Context({"request": request})) == "<p>before</p><p>after</p>"
    assert "no placement 'nowhere'" in caplog.text

    from adengine.serving import get_backend

    def broken(**kwargs):
        raise RuntimeError("the ad engine is on fire")

    monkeypatch.setattr(get_backend(), "decide", broken)
    tpl = Template('{% load adengine %}<p>before</p>{% ad_slot "home-hero" %}<p>after</p>')
    assert tpl.render(Context({"request": request})) == "<p>before</p><p>after</p>"
    assert "the ad engine is on fire" in caplog.text


def test_storefront_renders_when_the_broker_is_down(client, make_campaign, django_capture_on_commit_callbacks, caplog):
    from tests.factories import PlacementFactory

    PlacementFactory(key="product-sidebar")
    product = ProductFactory()
    make_campaign(product=product)  # an ad that fits the product page
    saved = app.conf.broker_write_url, app._pool, app.amqp._producer_pool
    app.conf.broker_write_url = "redis://127.0.0.1:9/0"  # nothing listens there
    app._pool = app.amqp._producer_pool = None
    try:
        with adengine_settings(REFRESH_DEBOUNCE_SECONDS=30), django_capture_on_commit_callbacks(execute=True):
            resp = client.get(reverse("shop:product", args=[product.sku]))
    finally:
        app.conf.broker_write_url, app._pool, app.amqp._producer_pool = saved
    assert resp.status_code == 200 and "Sponsored" in resp.content.decode()
    assert BehaviourEvent.objects.filter(kind="view").exists()
    assert "could not enqueue adengine.refresh_interests" in caplog.text


def test_why_page_shows_interests_only_to_the_shopper_who_saw_the_ad(client, placement, make_campaign):
    # given a logged-in shopper with interests and behaviour, shown a personalised ad
    running = unit(1)
    product = ProductFactory(title_en="Trail runner X")
    from adengine.models import ProductVector

    ProductVector.objects.create(product=product, embedding=running, text_hash="x", model_version="test")
    make_campaign(description="Runners who go off-road", keywords=["trail running"], target=running)
    # another campaign the shopper's interests are compared with (its audience threshold keeps it off this page)
    make_campaign(description="Candles", target=unit(2), audience_min_similarity=0.99)
    user = UserFactory()
    client.force_login(user)
    client.get(reverse("shop:product", args=[product.sku]))  # a view event
    Shopper.objects.filter(user=user).update(interest_vector=running)
    html = client.get(reverse("shop:home"), HTTP_USER_AGENT=BROWSER).content.decode()
    why_url = html.split('class="adengine-why" href="')[1].split('"')[0].replace("&amp;", "&")
    # when they open "Why this ad?"
    page = client.get(why_url).content.decode()
    # then they see the targeting and their own matching activity
    assert "Runners who go off-road" in page and "trail running" in page
    assert "Trail runner X" in page and "Turn personalised ads off" in page
    # someone else with the same link sees the targeting but not those interests
    other = client_class_get(why_url)
    assert "Runners who go off-road" in other and "Trail runner X" not in other
    assert "what you have looked at" in page and "what you have looked at" not in other  # not theirs: not "you"
    assert "what the shopper it was shown to had looked at" in other


def test_why_shows_the_search_only_to_the_shopper_who_made_it(placement, make_campaign):
    from adengine.models import Impression
    from adengine.selectors.why import explain
    from adengine.serving import PageContext, decide

    # given an ad shown to a shopper on their search results
    make_campaign(keywords=["rain jacket"])
    searcher, other = ShopperFactory(), ShopperFactory()
    context = PageContext(page="search", query="rain jacket for my sister")
    (ad,) = decide(placement_key=placement.key, shopper=searcher, context=context).ads
    impression = Impression.objects.get(nonce=ad.nonce)
    # then the searcher sees their search in "Why this ad?"; anyone else holding the link does not
    assert explain(impression, viewer=searcher)["page_context"]["query"] == "rain jacket for my sister"
    assert explain(impression, viewer=other)["page_context"]["query"] == ""
    assert explain(impression, viewer=None)["page_context"]["query"] == ""


def client_class_get(url):
    from django.test import Client

    return Client().get(url).content.decode()


def test_turning_personalisation_off_from_the_why_page(client, placement, make_campaign):
    make_campaign()
    user = UserFactory()
    client.force_login(user)
    product = ProductFactory()
    client.get(reverse("shop:product", args=[product.sku]))
    resp = client.post(reverse("adengine:personalisation"), {"allowed": "off", "next": "/c/x/"})
    assert resp.status_code == 302 and resp["Location"] == "/c/x/"
    shopper = Shopper.objects.get(user=user)
    assert shopper.personalisation is False and not shopper.events.exists()
    # an off-site "next" is not followed
    resp = client.post(reverse("adengine:personalisation"), {"allowed": "on", "next": "https://evil.example/"})
    assert resp["Location"] == "/"
    assert client.post(reverse("adengine:personalisation"), {"allowed": "perhaps"}).status_code == 400


CRAWLER = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


@pytest.mark.parametrize("ua", [CRAWLER, "", BROWSER])
def test_page_views_alone_create_no_shopper_or_session(ua, placement, make_campaign):
    """Every cookie-less request, bots included, used to create a shopper row and a session row."""
    from django.contrib.sessions.models import Session
    from django.test import Client

    from adengine.models import Impression

    product = ProductFactory()
    make_campaign(product=product)
    visitor = Client(headers={"User-Agent": ua})
    # when a cookie-less client loads the home page with an ad, and the ad API answers it
    page = visitor.get(reverse("shop:home"))
    api = visitor.get("/api/adengine/v1/decisions/", {"placement": placement.key})
    assert page.status_code == 200 and "Sponsored" in page.content.decode() and api.status_code == 200
    # then the ads were served and logged, to nobody in particular, and no row was created for the visitor
    assert Impression.objects.filter(shopper__isnull=True).count() == 2
    assert not Shopper.objects.exists() and not Session.objects.exists()
    assert "sessionid" not in page.cookies
    # and a crawler's product page view is not behaviour: still nothing, where a browser's creates one shopper
    visitor.get(product.get_absolute_url())
    assert Shopper.objects.count() == (1 if ua == BROWSER else 0)
    assert BehaviourEvent.objects.count() == (1 if ua == BROWSER else 0)


def test_a_click_gives_the_visitor_a_shopper_who_owns_the_ad(placement, make_campaign):
    from django.test import Client

    from adengine.models import Impression

    make_campaign()
    visitor = Client(headers={"User-Agent": BROWSER})
    html = visitor.get(reverse("shop:home")).content.decode()
    assert not Shopper.objects.exists()
    # when the visitor clicks the ad
    click_url = html.split('class="adengine-link" href="')[1].split('"')[0]
    assert visitor.get(click_url).status_code == 302
    # then the click created their shopper (and session), and the impression is theirs
    shopper = Shopper.objects.get()
    assert Impression.objects.get().shopper == shopper
    assert "sessionid" in visitor.cookies
    # and a bot's click claims nothing
    bot = Client(headers={"User-Agent": CRAWLER})
    html = bot.get(reverse("shop:home")).content.decode()
    bot.get(html.split('class="adengine-link" href="')[1].split('"')[0])
    assert Shopper.objects.count() == 1 and Impression.objects.filter(shopper__isnull=True).count() == 1


def test_why_this_ad_names_the_factors_that_decided_it(client, make_campaign, shopper_with, encoder):
    """A skincare ad was explained with "you viewed candles and pillows": interests are named only when they
    decided, and the page's fit is named when it did."""
    from adengine.services.behaviour import record_event
    from adengine.services.interests import refresh_interests
    from adengine.serving import tokens
    from tests.factories import PlacementFactory

    PlacementFactory(key="category-top", max_ads=1)
    pets = CategoryFactory(slug="pets")
    campaign = make_campaign(categories=["pets"], keywords=["dog food"], description="Food for dogs")
    user = UserFactory()
    client.force_login(user)
    from adengine.services.shoppers import get_or_create_for_user

    shopper = get_or_create_for_user(user=user)
    record_event(shopper=shopper, kind="view", product=ProductFactory(category=pets, title_en="Dog food, chicken"))
    refresh_interests()
    shopper.refresh_from_db()
    from adengine.serving import PageContext, decide

    # on the pets category page, the page decided
    (ad,) = decide(placement_key="category-top", shopper=shopper, context=PageContext(category="pets")).ads
    assert ad.campaign_id == campaign.pk
    why = client.get(tokens.urls(ad.nonce)["why_url"]).content.decode()
    assert "It targets the category of the page you were on (pets)." in why
    assert "It fits what you have looked at" not in why
    # and where the shopper's interests decided (the home page: no fit to the page), they are named
    make_campaign(description="Scented candles", keywords=["candles"])
    from adengine.services.campaigns import refresh_targets
    from adengine.serving import get_backend

    refresh_targets()  # both campaigns get their target vectors, so the shopper's fit to each is known
    get_backend().invalidate()
    shown = {}
    for _ in range(30):
        for ad in decide(placement_key="category-top", shopper=shopper, context=PageContext(page="home")).ads:
            shown[ad.campaign_id] = ad
    assert campaign.pk in shown
    why = client.get(tokens.urls(shown[campaign.pk].nonce)["why_url"]).content.decode()
    assert "It fits what you have looked at" in why and "Dog food, chicken" in why
    assert "It targets the category" not in why
