"""PostgreSQL goes away while a storefront page renders: adengine's tag renders nothing and logs, the rest of
the page renders; the decision API and the tracking links answer 503 with a message, never 500."""

from __future__ import annotations

import logging

import pytest
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.middleware import SessionMiddleware
from django.template import Context
from django.template.loader import get_template
from django.test import RequestFactory

from adengine.serving import tokens
from shop.models import Category, Product
from tests.factories import ProductFactory

from .outage import database_outage
from .servers import BROWSER

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_ad_slot_of_a_page_renders_nothing_and_logs_when_the_database_goes_away(placement, make_campaign, caplog):
    # given the home page's view has read the shop's data (a popular product the ad campaign also promotes)
    product = ProductFactory(title_en="Featherlight trail shoe")
    make_campaign(product=product)
    popular, nav = list(Product.objects.all()), list(Category.objects.all())
    request = RequestFactory().get("/", HTTP_USER_AGENT=BROWSER)
    SessionMiddleware(lambda r: None).process_request(request)
    request.user = AnonymousUser()
    context = {"request": request, "user": request.user, "popular": popular, "nav_categories": nav, "cart_count": 0}
    # when PostgreSQL stops answering before the template reaches the ad slot
    with caplog.at_level(logging.ERROR, logger="adengine"), database_outage(keep_mine=False):
        html = get_template("shop/home.html").template.render(Context(context))
    # then the page renders without the ad, and adengine logged why
    assert "Featherlight trail shoe" in html and "</html>" in html
    assert "Sponsored" not in html and "/ads/v/" not in html
    assert "ad_slot 'home-hero' failed" in caplog.text


def test_the_decision_api_and_tracking_links_answer_503_while_the_database_is_down(placement, make_campaign, client):
    make_campaign()
    (ad,) = client.get("/api/adengine/v1/decisions/", {"placement": placement.key}).json()["ads"]
    click, view = ad["click_url"].replace("http://testserver", ""), ad["view_url"].replace("http://testserver", "")
    token = view.rsplit("/", 1)[-1].removesuffix(".gif")
    with database_outage(keep_mine=False):
        # a decision: 503 with a message
        resp = client.get("/api/adengine/v1/decisions/", {"placement": placement.key, "session": "s" * 20})
        assert resp.status_code == 503 and resp.json()["detail"] == "ads are unavailable right now."
        # an app's view beacon and "Why this ad?": 503 with a message
        beacon = client.post("/api/adengine/v1/impressions/", {"token": token}, content_type="application/json")
        assert beacon.status_code == 503 and "unavailable" in beacon.json()["detail"]
        assert client.get(f"/api/adengine/v1/why/{token}/").status_code == 503
        # the click link: a page saying so (not a 500), and the view pixel: 503
        page = client.get(click, HTTP_USER_AGENT=BROWSER)
        assert page.status_code == 503 and "unavailable" in page.content.decode()
        assert client.get(view, HTTP_USER_AGENT=BROWSER).status_code == 503
        why = client.get(ad["why_url"].replace("http://testserver", ""), HTTP_USER_AGENT=BROWSER)
        assert why.status_code == 503 and "unavailable" in why.content.decode()
    # and once it is back, the same click counts
    assert client.get(click, HTTP_USER_AGENT=BROWSER).status_code == 302
    assert tokens.read("click", click.rstrip("/").rsplit("/", 1)[-1]).nonce.hex == ad["impression"]
