"""REST API: decisions for apps, beacons, why, personalisation, advertisers' campaigns and stats."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import OperationalError
from rest_framework.test import APIClient

from adengine.models import AdEvent, BehaviourEvent, Campaign, Impression
from tests.factories import (
    AdvertiserFactory,
    CampaignFactory,
    CategoryFactory,
    PlacementFactory,
    ProductFactory,
    UserFactory,
)

from .conftest import unit
from .test_tracking import BROWSER

pytestmark = pytest.mark.django_db
API = "/api/adengine/v1"


@pytest.fixture
def api():
    return APIClient(HTTP_USER_AGENT=BROWSER)


def test_decision_for_an_app_with_signed_urls(api, placement, make_campaign):
    product = ProductFactory()
    campaign = make_campaign(product=product)
    resp = api.get(f"{API}/decisions/", {"placement": "home-hero", "session": "app-session-0123456789", "page": "home"})
    assert resp.status_code == 200, resp.content
    body = resp.json()
    (ad,) = body["ads"]
    assert ad["campaign_id"] == campaign.pk and ad["sponsored"] is True
    assert ad["product"]["id"] == str(product.pk)
    assert ad["click_url"].startswith("http://testserver/ads/c/")
    # the app reports the view with the token of its view URL: counted once
    token = ad["view_url"].split("/")[-1].removesuffix(".gif")
    assert api.post(f"{API}/impressions/", {"token": token}, format="json").json()["counted"] is True
    assert api.post(f"{API}/impressions/", {"token": token}, format="json").status_code == 409
    assert api.post(f"{API}/impressions/", {"token": token + "x"}, format="json").status_code == 400
    # the same app session is the same shopper
    api.get(f"{API}/decisions/", {"placement": "home-hero", "session": "app-session-0123456789"})
    assert Impression.objects.values("shopper").distinct().count() == 1


def test_apps_name_products_by_the_shops_own_key(api, placement, make_campaign):
    """Apps know SKUs, not primary keys: the decision and events APIs take either."""
    product = ProductFactory(sku="COF-001")
    make_campaign(product=product)
    by_sku = api.get(f"{API}/decisions/", {"placement": "home-hero", "product": "COF-001", "page": "product"})
    by_pk = api.get(f"{API}/decisions/", {"placement": "home-hero", "product": str(product.pk), "page": "product"})
    assert by_sku.status_code == 200 and by_pk.status_code == 200
    assert Impression.objects.filter(context__product=str(product.pk)).count() == 2
    resp = api.post(f"{API}/events/", {"events": [{"kind": "view", "product": "COF-001"}]}, format="json")
    assert resp.status_code == 201 and resp.json()["recorded"] == 1, resp.content
    assert BehaviourEvent.objects.get().product_id == product.pk
    unknown = api.get(f"{API}/decisions/", {"placement": "home-hero", "product": "COF-999"})
    assert unknown.status_code == 400 and "no product with SKU or id 'COF-999'" in str(unknown.json()["product"])


@pytest.mark.parametrize(
    "params,status,field",
    [
        ({}, 400, "placement"),
        ({"placement": "home-hero", "n": 0}, 400, "n"),
        ({"placement": "home-hero", "n": "many"}, 400, "n"),
        ({"placement": "home-hero", "product": "999999"}, 400, "product"),
        ({"placement": "home-hero", "session": "short"}, 400, "session"),
        ({"placement": "nowhere"}, 404, "detail"),
    ],
)
def test_bad_decision_requests(api, placement, params, status, field):
    resp = api.get(f"{API}/decisions/", params)
    assert resp.status_code == status and field in resp.json()


def test_decision_answers_503_when_the_database_fails(api, placement, monkeypatch):
    from adengine.serving import get_backend

    def down():
        raise OperationalError("connection refused")

    monkeypatch.setattr(get_backend().index, "get", down)
    resp = api.get(f"{API}/decisions/", {"placement": "home-hero"})
    assert resp.status_code == 503 and "unavailable" in resp.json()["detail"]


def test_why_and_personalisation_off(api, placement, make_campaign):
    make_campaign(description="Runners who go off-road", keywords=["trail running"])
    session = "app-session-why-0123456789"
    ad = api.get(f"{API}/decisions/", {"placement": "home-hero", "session": session}).json()["ads"][0]
    why = api.get(f"{API}/why/{ad['why_url'].rstrip('/').split('/')[-1]}/").json()
    assert why["targeting"]["keywords"] == ["trail running"] and why["sponsored"] is True
    assert api.get(f"{API}/why/not-a-token/").status_code == 400
    assert api.post(f"{API}/personalisation/", {"allowed": "maybe"}, format="json").status_code == 400
    off = api.post(f"{API}/personalisation/", {"allowed": False, "session": session}, format="json")
    assert off.json() == {"allowed": False}
    assert api.get(f"{API}/personalisation/", {"session": session}).json() == {"allowed": False}


@pytest.fixture
def two_advertisers():
    mine, theirs = AdvertiserFactory(name="Mine"), AdvertiserFactory(name="Theirs")
    user = UserFactory()
    mine.managers.add(user)
    return user, CampaignFactory(advertiser=mine), CampaignFactory(advertiser=theirs)


def test_advertisers_see_and_change_only_their_own(api, two_advertisers):
    user, own, other = two_advertisers
    api.force_authenticate(user)
    listed = api.get(f"{API}/campaigns/").json()
    assert [c["id"] for c in listed] == [own.pk]
    assert api.get(f"{API}/campaigns/{other.pk}/").status_code == 404
    assert api.patch(f"{API}/campaigns/{other.pk}/", {"status": "paused"}, format="json").status_code == 404
    resp = api.patch(f"{API}/campaigns/{own.pk}/", {"status": "paused", "daily_budget": "5.00"}, format="json")
    assert resp.status_code == 200 and resp.json()["status"] == "paused"
    assert api.get(f"{API}/campaigns/{other.pk}/stats/").status_code == 404
    # creating for someone else's advertiser is refused; for one's own it works
    body = {"advertiser": other.advertiser_id, "name": "Sneaky", "bid": "1.00", "total_budget": "10"}
    assert api.post(f"{API}/campaigns/", body, format="json").status_code == 400
    body["advertiser"] = own.advertiser_id
    created = api.post(f"{API}/campaigns/", {**body, "placements": []}, format="json")
    assert created.status_code == 201, created.content
    # anonymous callers and shoppers who manage nothing are refused
    assert APIClient().get(f"{API}/campaigns/").status_code in (401, 403)
    api.force_authenticate(UserFactory())
    assert api.get(f"{API}/campaigns/").status_code == 403


def test_staff_see_all(api, two_advertisers):
    api.force_authenticate(UserFactory(is_staff=True))
    assert len(api.get(f"{API}/campaigns/").json()) == 2


@pytest.mark.parametrize(
    "change,field",
    [
        ({"landing_url": "javascript:alert(1)"}, "landing_url"),
        ({"landing_url": "//evil.example/"}, "landing_url"),
        ({"landing_url": "/\\evil.example"}, "landing_url"),
        ({"daily_budget": "500", "total_budget": "100"}, "daily_budget"),
        ({"bid": "-1"}, "bid"),
        ({"bid": "0"}, "bid"),  # a sponsored campaign never runs unbilled (Campaign.clean, as in the admin)
        ({"languages": ["klingon"]}, "languages"),
        ({"categories": ["no-such-category"]}, "categories"),
        ({"ends_at": "2026-01-01T00:00:00Z", "starts_at": "2026-02-01T00:00:00Z"}, "ends_at"),
        ({"audience_min_similarity": 1.5}, "audience_min_similarity"),
        ({"status": "flying"}, "status"),
        ({"tier": "house"}, "tier"),
        ({"promoted_products": ["nope"]}, "promoted_products"),
        ({"placements": ["nowhere"]}, "placements"),
    ],
)
def test_campaign_changes_are_validated(api, two_advertisers, change, field):
    user, own, _ = two_advertisers
    api.force_authenticate(user)
    resp = api.patch(f"{API}/campaigns/{own.pk}/", change, format="json")
    assert resp.status_code == 400 and field in resp.json(), resp.content


def test_a_campaign_posted_as_the_admin_would_refuse_it_is_a_400_naming_each_field(api, two_advertisers):
    user, own, _ = two_advertisers
    api.force_authenticate(user)
    body = {"advertiser": own.advertiser_id, "name": "Free", "status": "paused", "bid": "0", "total_budget": "10",
            "daily_budget": "5", "languages": ["xx"], "categories": ["Runing"]}  # fmt: skip
    CategoryFactory(slug="running", name_en="Running")
    resp = api.post(f"{API}/campaigns/", body, format="json")
    assert resp.status_code == 400
    errors = resp.json()
    assert set(errors) == {"categories"}  # each field's own errors first; the model's rules once they pass
    assert "did you mean 'running'" in errors["categories"][0]
    body["categories"] = ["Running"]
    errors = api.post(f"{API}/campaigns/", body, format="json").json()
    assert set(errors) == {"bid", "languages"} and "xx" in errors["languages"][0]
    body.update(bid="0.50", languages=["en"], keywords=["trail", " Trail ", "road"])
    created = api.post(f"{API}/campaigns/", body, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["categories"] == ["running"]  # stored by key, as the admin stores them
    assert created.json()["keywords"] == ["trail", "road"]


def test_campaign_stats(api, two_advertisers, make_campaign):
    user, own, _ = two_advertisers
    PlacementFactory(key="home-hero")
    from adengine.models import Creative

    Creative.objects.create(campaign=own, asset_type="headline", language="en", text="Hi", status="approved",
                            passes_rules=True)  # fmt: skip
    client = APIClient(HTTP_USER_AGENT=BROWSER)
    ad = client.get(f"{API}/decisions/", {"placement": "home-hero"}).json()["ads"][0]
    client.get(ad["click_url"].replace("http://testserver", ""))
    api.force_authenticate(user)
    stats = api.get(f"{API}/campaigns/{own.pk}/stats/").json()
    assert stats["totals"]["impressions"] == 1 and stats["totals"]["clicks"] == 1
    assert stats["totals"]["spend"] == 1.0 and stats["by_day"][0]["clicks"] == 1
    assert api.get(f"{API}/campaigns/{own.pk}/stats/", {"since": "yesterday"}).status_code == 400
    assert AdEvent.objects.count() == 1
    assert Campaign.objects.get(pk=own.pk).spent == Decimal("1.00")


def test_schema_lists_the_serving_endpoints(api):
    schema = api.get(f"{API}/schema/").content.decode()
    for path in ("/decisions/", "/impressions/", "/campaigns/{campaign_id}/stats/", "/personalisation/"):
        assert path in schema
    assert unit(0).shape == (384,)


def test_an_anonymous_sessions_consent_cannot_be_switched_from_another_site(placement):
    from django.test import Client

    from adengine.models import Shopper

    # given an anonymous visitor with a session (and a CSRF cookie from the storefront)
    browser = Client(enforce_csrf_checks=True)
    browser.get("/")
    url = "/api/adengine/v1/personalisation/"
    # when another site posts to the consent switch with the visitor's cookies but without the token
    forged = browser.post(url, {"allowed": False}, content_type="application/json")
    # then it is refused and nothing changes
    assert forged.status_code == 403
    assert not Shopper.objects.filter(personalisation=False).exists()
    # and the shop's own page, which sends the token from its CSRF cookie, can switch it
    token = "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6"  # a CSRF secret as Django stores it in the cookie
    browser.cookies["csrftoken"] = token
    ok = browser.post(url, {"allowed": False}, content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert ok.status_code == 200 and ok.json() == {"allowed": False}
