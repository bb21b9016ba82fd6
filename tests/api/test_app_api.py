"""The API as a mobile developer calls it: products by SKU, absolute URLs, a root that lists the endpoints, and
the README's curl flow (decision -> view -> click) run as written."""

from __future__ import annotations

import re
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.checks import run_checks
from django.test import override_settings
from rest_framework.test import APIClient

from adengine.adapters import get_adapter
from adengine.models import AdEvent, BehaviourEvent, Impression
from tests.conftest import adengine_settings
from tests.factories import (
    AdvertiserFactory,
    CampaignFactory,
    CreativeFactory,
    PlacementFactory,
    ProductFactory,
    UserFactory,
)

API = "/api/adengine/v1"
APP = "ShopApp/2.3 (iPhone; iOS 17.4) CFNetwork/1494.0.7 Darwin/23.4.0"
README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


@pytest.fixture
def app():
    return APIClient(HTTP_USER_AGENT=APP)


@pytest.fixture
def sidebar():
    return PlacementFactory(key="product-sidebar", format="product", max_ads=2)


def _campaign(product, *, landing_url=""):
    campaign = CampaignFactory(products=[product], landing_url=landing_url)
    CreativeFactory(campaign=campaign, text="Better coffee at home")
    return campaign


# --- products by the shop's own key ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_decision_takes_a_sku_or_an_id_and_answers_both(app, sidebar):
    # given a promoted product with a SKU
    product = ProductFactory(sku="COF-302-04", image_url="/img/COF-302-04.svg")
    _campaign(product)
    for named in ("COF-302-04", str(product.pk)):
        # when an app asks for the product page's ads by SKU, then by id
        resp = app.get(f"{API}/decisions/", {"placement": "product-sidebar", "product": named, "page": "product"})
        # then the ad's product is named both ways
        assert resp.status_code == 200, resp.content
        (ad,) = resp.json()["ads"]
        assert ad["product"]["product_id"] == str(product.pk) and ad["product"]["product_key"] == "COF-302-04"
    assert Impression.objects.filter(context__product=str(product.pk)).count() == 2


@pytest.mark.django_db
def test_events_and_campaigns_take_skus(app):
    product = ProductFactory(sku="TEA-100-01")
    resp = app.post(f"{API}/events/", {"events": [{"kind": "view", "product": "TEA-100-01"}]}, format="json")
    assert resp.status_code == 201, resp.content
    assert BehaviourEvent.objects.get().product_id == product.pk
    # an advertiser names promoted products by SKU and reads them back with both names
    owner = UserFactory()
    advertiser = AdvertiserFactory()
    advertiser.managers.add(owner)
    app.force_authenticate(owner)
    body = {"advertiser": advertiser.pk, "name": "Tea", "promoted_products": ["TEA-100-01"]}
    created = app.post(f"{API}/campaigns/", body, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["promoted_products"] == [str(product.pk)]
    assert created.json()["promoted_product_details"] == [{"product_id": str(product.pk), "product_key": "TEA-100-01"}]


@pytest.mark.django_db
def test_an_unknown_key_is_a_400_that_says_so(app, sidebar):
    resp = app.get(f"{API}/decisions/", {"placement": "product-sidebar", "product": "COF-999"})
    assert resp.status_code == 400 and resp.json()["product"] == "no product with SKU or id 'COF-999'."
    event = app.post(f"{API}/events/", {"events": [{"kind": "cart", "product": "COF-999"}]}, format="json")
    assert event.status_code == 400 and "no product with SKU or id 'COF-999'" in str(event.json())


@pytest.mark.django_db
def test_a_key_that_is_one_products_sku_and_anothers_id_is_a_400_naming_what_to_send(app, sidebar):
    # given product B whose SKU is product A's id
    a = ProductFactory(sku="A-1")
    b = ProductFactory(sku=str(a.pk))
    # when an app names str(a.pk)
    resp = app.get(f"{API}/decisions/", {"placement": "product-sidebar", "product": str(a.pk)})
    # then it is told that the key is ambiguous, and what to send for each product
    assert resp.status_code == 400, resp.content
    message = resp.json()["product"]
    assert f"'{a.pk}' is ambiguous" in message
    assert f"'A-1' for id {a.pk}" in message and f"'{b.pk}' for id {b.pk}" in message
    # and those names work
    for name, product in (("A-1", a), (str(b.pk), b)):
        ok = app.post(f"{API}/events/", {"events": [{"kind": "view", "product": name}]}, format="json")
        assert ok.status_code == 201, ok.content
        assert BehaviourEvent.objects.order_by("-pk").first().product_id == product.pk
    ambiguous = app.post(f"{API}/events/", {"events": [{"kind": "view", "product": str(a.pk)}]}, format="json")
    assert ambiguous.status_code == 400 and "ambiguous" in str(ambiguous.json())


@pytest.mark.django_db
def test_an_inactive_product_does_not_make_a_key_ambiguous(app):
    a = ProductFactory(sku="A-2")
    ProductFactory(sku=str(a.pk), is_active=False)
    resp = app.post(f"{API}/events/", {"events": [{"kind": "view", "product": str(a.pk)}]}, format="json")
    assert resp.status_code == 201, resp.content


@pytest.mark.django_db
def test_the_product_key_field_is_a_setting():
    product = ProductFactory(sku="SKU-9")
    adapter = get_adapter()
    assert adapter.product_key_field() == "sku" and adapter.product_key(product) == "SKU-9"
    with adengine_settings(PRODUCT_KEY_FIELD="pk"):
        adapter = get_adapter()
        assert adapter.product_key(product) == str(product.pk) and adapter.product_key_label() == "id"
        assert adapter.match_products(["SKU-9"]) == {}
    with adengine_settings(PRODUCT_KEY_FIELD="brand"):
        assert [e.id for e in run_checks() if e.id.endswith("013")] == ["adengine.W013"]  # not unique
    with adengine_settings(PRODUCT_KEY_FIELD="barcode"):
        (error,) = [e for e in run_checks() if e.id == "adengine.E013"]
        assert "'barcode', which is not a field of shop.Product" in error.msg and "sku" in error.hint


# --- absolute URLs --------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_every_url_of_a_decision_is_absolute(app, sidebar):
    product = ProductFactory(sku="COF-1", image_url="/img/COF-1.svg")
    _campaign(product)
    resp = app.get(f"{API}/decisions/", {"placement": "product-sidebar", "product": "COF-1", "page": "product"})
    (ad,) = resp.json()["ads"]
    assert ad["product"]["image_url"] == "http://testserver/img/COF-1.svg"
    assert ad["product"]["url"] == "http://testserver/p/COF-1/"
    assert ad["landing_url"] == "http://testserver/p/COF-1/"
    for key in ("view_url", "click_url", "why_url"):
        assert ad[key].startswith("http://testserver/ads/"), ad[key]


@pytest.mark.django_db
def test_an_image_on_a_cdn_is_left_as_it_is(app, sidebar):
    product = ProductFactory(sku="COF-2", image_url="https://cdn.example.com/COF-2.jpg")
    _campaign(product, landing_url="/deals/coffee/")
    (ad,) = app.get(f"{API}/decisions/", {"placement": "product-sidebar"}).json()["ads"]
    assert ad["product"]["image_url"] == "https://cdn.example.com/COF-2.jpg"
    assert ad["landing_url"] == "http://testserver/p/COF-2/"  # the product's page comes before the campaign's


@pytest.mark.django_db
@pytest.mark.parametrize("trusted", [True, False])
def test_behind_a_tls_proxy_the_urls_are_https_only_when_the_proxy_is_trusted(app, sidebar, trusted):
    # given a shop behind a proxy that terminates TLS and says so in X-Forwarded-Proto
    product = ProductFactory(sku="COF-3", image_url="/img/COF-3.svg")
    _campaign(product)
    header = ("HTTP_X_FORWARDED_PROTO", "https") if trusted else None
    with override_settings(SECURE_PROXY_SSL_HEADER=header):
        resp = app.get(
            f"{API}/decisions/",
            {"placement": "product-sidebar"},
            HTTP_X_FORWARDED_PROTO="https",
            HTTP_HOST="testserver",
        )
    (ad,) = resp.json()["ads"]
    # then the links are https when the settings trust the header, and never because a client sent it
    scheme = "https" if trusted else "http"
    urls = [ad["view_url"], ad["click_url"], ad["why_url"], ad["landing_url"], ad["product"]["image_url"]]
    assert all(u.startswith(f"{scheme}://testserver/") for u in urls), urls


# --- the root -------------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_root_lists_every_endpoint_with_its_url(app):
    resp = app.get(f"{API}/")
    assert resp.status_code == 200, resp.content
    body = resp.json()
    assert body["docs"] == "http://testserver/api/adengine/v1/docs/"
    assert body["schema"] == "http://testserver/api/adengine/v1/schema/"
    endpoints = {e["name"]: e for e in body["endpoints"]}
    assert endpoints["decisions"]["url"] == "http://testserver/api/adengine/v1/decisions/"
    assert (
        endpoints["decisions"]["methods"] == ["GET"]
        and "Ads for one placement" in endpoints["decisions"]["description"]
    )
    assert endpoints["impressions"]["methods"] == ["POST"]
    assert endpoints["campaign"]["url"] == "http://testserver/api/adengine/v1/campaigns/{campaign_id}/"
    assert endpoints["campaign"]["methods"] == ["GET", "PUT", "PATCH"]
    assert endpoints["why"]["url"].endswith("/why/{token}/")
    assert {"events", "personalisation", "campaigns", "creatives", "generation-request", "schema", "docs"} <= set(
        endpoints
    )
    # and every listed URL without a parameter is served (not the API's catch-all 404)
    for endpoint in body["endpoints"]:
        if "{" not in endpoint["url"] and "GET" in endpoint["methods"] and endpoint["name"] != "decisions":
            path = endpoint["url"].removeprefix("http://testserver")
            assert app.get(path).status_code in (200, 401, 403), path


@pytest.mark.django_db
def test_the_root_and_the_counting_rules_are_in_the_schema(app):
    schema = app.get(f"{API}/schema/", {"format": "json"}).json()
    assert "get" in schema["paths"]["/api/adengine/v1/"]
    decisions = schema["paths"]["/api/adengine/v1/decisions/"]["get"]["description"]
    impressions = schema["paths"]["/api/adengine/v1/impressions/"]["post"]["description"]
    for text in (decisions, impressions, schema["info"]["description"]):
        assert "Which clients are counted" in text and "BOT_USER_AGENTS" in text and "crawlerdetect" in text
        assert "120 views or 10 clicks a minute" in text and "CFNetwork" in text
    props = schema["components"]["schemas"]["AdProduct"]["properties"]
    assert {"product_id", "product_key", "image_url", "url"} <= set(props)


def test_the_readme_documents_which_clients_are_counted():
    section = README[README.index("**Which clients are counted.**") :][:3000]
    for fact in ("`bot`", "`rate_limited`", "`duplicate`", "`over_budget`", "crawlerdetect", "BOT_USER_AGENTS",
                 "120 views or 10 clicks", "IPv4 /24", "429", "TRUSTED_PROXIES", "OkHttp"):  # fmt: skip
        assert fact in section, fact


# --- the README's mobile flow ---------------------------------------------------------------------------------------


def _readme_flow() -> str:
    block = re.search(r"<!-- mobile-flow -->\s*```sh\n(.*?)```", README, re.S)
    assert block, "the README's mobile flow is marked <!-- mobile-flow -->"
    return "\n".join(line.removeprefix("  ") for line in block.group(1).splitlines())


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not (shutil.which("curl") and shutil.which("jq")), reason="needs curl and jq")
def test_the_readmes_curl_flow_works_as_written(live_server):
    # given the demo's placement and a campaign promoting the README's SKU
    PlacementFactory(key="product-sidebar", format="product", max_ads=2)
    product = ProductFactory(sku="COF-302-04", price=Decimal("59.99"))
    campaign = _campaign(product)
    script = _readme_flow().replace("BASE=http://127.0.0.1:8000", f"BASE={live_server.url}")
    assert f"BASE={live_server.url}" in script
    # when the README's lines run
    run = subprocess.run(["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True, timeout=120)
    # then the view is counted and the click lands on the product's page
    assert run.returncode == 0, run.stderr
    assert '"product": "COF-302-04"' in run.stdout, run.stdout
    assert '{"status":"accepted","counted":true}' in run.stdout, run.stdout
    assert f"302 {live_server.url}/p/COF-302-04/" in run.stdout, run.stdout
    counted = AdEvent.objects.filter(campaign=campaign, status=AdEvent.Status.ACCEPTED)
    assert sorted(counted.values_list("kind", flat=True)) == ["click", "view"]


@pytest.mark.django_db
def test_the_same_flow_with_the_test_client(app, sidebar):
    """decision -> view beacon -> click, the calls of the README's flow; curl's own user agent is a bot's."""
    product = ProductFactory(sku="COF-302-04")
    campaign = _campaign(product)
    params = {"placement": "product-sidebar", "product": "COF-302-04", "page": "product", "language": "en",
              "session": "app-install-7f3c9a2e41d6"}  # fmt: skip
    (ad,) = app.get(f"{API}/decisions/", params).json()["ads"]
    token = ad["view_url"].split("/")[-1].removesuffix(".gif")
    assert app.post(f"{API}/impressions/", {"token": token}, format="json").json() == {
        "status": "accepted",
        "counted": True,
    }
    why = app.get(f"{API}/why/{ad['why_url'].rstrip('/').split('/')[-1]}/").json()["page_context"]
    assert why["promoted_product_key"] == "COF-302-04" and why["promoted_product_id"] == str(product.pk)
    click = app.get(ad["click_url"].removeprefix("http://testserver"))
    assert click.status_code == 302 and click["Location"] == "/p/COF-302-04/"
    assert campaign.refresh_from_db() is None and campaign.spent == Decimal("1.00")  # the CPC click is billed
    # the same calls with curl's own user agent: served, answered, redirected, but neither counted nor billed
    curl = APIClient(HTTP_USER_AGENT="curl/8.5.0")
    (ad,) = curl.get(f"{API}/decisions/", params).json()["ads"]
    token = ad["view_url"].split("/")[-1].removesuffix(".gif")
    assert curl.post(f"{API}/impressions/", {"token": token}, format="json").json() == {
        "status": "bot",
        "counted": False,
    }
    assert curl.get(ad["click_url"].removeprefix("http://testserver")).status_code == 302
    campaign.refresh_from_db()
    assert campaign.spent == Decimal("1.00")
