"""The storefront in the shopper's language: the ad slot's labels, "Why this ad?" and the link pages are translated
(Chinese for a shopper whose browser asks for it), and prices carry the shop's currency in the slot and the API."""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from adengine.models import ProductVector, Shopper
from tests.conftest import adengine_settings
from tests.factories import CreativeFactory, ProductFactory, UserFactory

from .conftest import unit
from .test_tracking import BROWSER

pytestmark = pytest.mark.django_db
ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-CN,zh;q=0.9", "HTTP_USER_AGENT": BROWSER}
EN = {"HTTP_ACCEPT_LANGUAGE": "en-GB,en;q=0.9", "HTTP_USER_AGENT": BROWSER}


def slot(html: str) -> str:
    """The ad slot of a storefront page (the shop's own product cards show prices too)."""
    assert '<aside class="adengine-slot' in html, "no ad slot on the page"
    return html[html.index('<aside class="adengine-slot') : html.index("</aside>")]


@pytest.fixture
def bilingual(placement, make_campaign):
    """A campaign with approved copy in English and Chinese, promoting a product at 1,299 yuan."""
    product = ProductFactory(title_en="Kestrel trail shoe", title_zh="Kestrel 越野跑鞋", price="1299.00")
    campaign = make_campaign(product=product, headlines=0, languages=["en", "zh"])
    CreativeFactory(campaign=campaign, language="en", text="Grip for every trail")
    CreativeFactory(campaign=campaign, language="zh", text="越野跑，稳稳抓地")
    return campaign


def test_a_chinese_shopper_sees_the_slot_in_chinese_with_the_currency(client, bilingual):
    # when a shopper whose browser asks for Chinese opens the home page
    html = slot(client.get(reverse("shop:home"), **ZH).content.decode())
    # then the ad is labelled and explained in Chinese, with its Chinese copy and a price in yuan
    assert f"赞助 · {bilingual.advertiser.name}" in html and 'aria-label="赞助"' in html
    assert "为什么看到这条广告？" in html
    assert "越野跑，稳稳抓地" in html and "Kestrel 越野跑鞋" in html
    assert "¥1,299.00" in html
    assert "Sponsored" not in html and "Why this ad?" not in html


def test_an_english_shopper_sees_the_slot_in_english_with_the_currency(client, bilingual):
    html = slot(client.get(reverse("shop:home"), **EN).content.decode())
    assert f"Sponsored · {bilingual.advertiser.name}" in html and "Why this ad?" in html
    assert "Grip for every trail" in html and "¥1,299.00" in html
    assert "赞助" not in html


def test_the_price_follows_the_shops_currency_setting(client, bilingual):
    with adengine_settings(CURRENCY="EUR"):
        bilingual.save()  # the serving index rebuilds on a campaign's save, with the new setting
        html = slot(client.get(reverse("shop:home"), **EN).content.decode())
    assert "€1,299.00" in html and "¥" not in html


def test_why_this_ad_and_the_link_pages_speak_the_shoppers_language(client, placement, make_campaign):
    # given a logged-in Chinese shopper with interests, shown a personalised ad
    running = unit(1)
    product = ProductFactory(title_en="Trail runner X", title_zh="越野跑鞋X")
    ProductVector.objects.create(product=product, embedding=running, text_hash="x", model_version="test")
    campaign = make_campaign(target=running, headlines=0, languages=["zh"])
    CreativeFactory(campaign=campaign, language="zh", text="越野跑，稳稳抓地")
    # another campaign the shopper's interests are compared with (its audience threshold keeps it off this page)
    make_campaign(target=unit(2), audience_min_similarity=0.99)
    user = UserFactory()
    client.force_login(user)
    client.get(reverse("shop:product", args=[product.sku]), **ZH)  # a view event
    Shopper.objects.filter(user=user).update(interest_vector=running)
    html = client.get(reverse("shop:home"), **ZH).content.decode()
    why_url = html.split('class="adengine-why" href="')[1].split('"')[0].replace("&amp;", "&")
    # when they open "Why this ad?"
    page = client.get(why_url, **ZH).content.decode()
    # then it is in Chinese, down to their own activity, the ranking and the personalisation switch
    assert '<html lang="zh-hans">' in page and "<h1>为什么看到这条广告？</h1>" in page
    assert f"这是来自<strong>{campaign.advertiser.name}</strong>的赞助广告" in page
    assert "你看过：越野跑鞋X" in page and "广告的排序取决于广告主的出价（按点击）" in page
    assert "关闭个性化广告" in page and "Why this ad?" not in page
    # and an English shopper reads the same page in English
    english = client.get(why_url, **EN).content.decode()
    assert "<h1>Why this ad?</h1>" in english and "You viewed: Trail runner X" in english
    assert "Ads are ranked by what the advertiser pays (per click)" in english
    # a link that cannot be followed is explained in the shopper's language too
    bad = client.get("/ads/c/not-a-token/", **ZH)
    assert bad.status_code == 400 and "此链接无效。" in bad.content.decode()
    assert "This link is not valid." in client.get("/ads/c/not-a-token/", **EN).content.decode()


def test_the_api_gives_the_price_as_a_number_and_formatted_with_its_currency(bilingual):
    # the API's messages stay English for developers; the ad's texts follow the language asked for
    api = APIClient(HTTP_USER_AGENT=BROWSER)
    resp = api.get("/api/adengine/v1/decisions/", {"placement": "home-hero", "language": "zh"})
    assert resp.status_code == 200, resp.content
    (ad,) = resp.json()["ads"]
    assert ad["headline"] == "越野跑，稳稳抓地" and ad["language"] == "zh"
    assert ad["product"]["price"] == "1299.00" and ad["product"]["currency"] == "CNY"
    assert ad["product"]["price_text"] == "¥1,299.00"
