"""What schemathesis found, one test each: the answers the schema promises, for the inputs that used to break them."""

from __future__ import annotations

import base64

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from tests.conftest import adengine_settings
from tests.factories import AdvertiserFactory, CampaignFactory, PlacementFactory, ProductFactory, UserFactory

pytestmark = pytest.mark.django_db
API = "/api/adengine/v1"


@pytest.fixture
def staff():
    user = UserFactory(username="staff-user", is_staff=True)
    user.set_password("pw")
    user.save()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Basic " + base64.b64encode(b"staff-user:pw").decode())
    return client


def test_the_schema_generates_without_a_warning(tmp_path):
    call_command("spectacular", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))


def test_every_operation_documents_the_shared_errors(client):
    schema = client.get(f"{API}/schema/?format=json").json()
    for path, operations in schema["paths"].items():
        if path.endswith("/schema/"):
            continue
        for method, operation in operations.items():
            assert {"400", "401", "403", "429", "503"} <= set(operation["responses"]), (method, path)
            if "{" in path:
                assert "404" in operation["responses"], (method, path)


@pytest.mark.parametrize(
    "path",
    [
        "/campaigns/123456789012345678901234567890/",  # beyond the documented range (and bigint)
        "/campaigns/-1/stats/",
        "/creatives/abc/approve/",
        "/nowhere/",
    ],
)
def test_an_id_of_the_wrong_shape_or_an_unknown_path_is_a_json_404(staff, path):
    for method in (staff.get, staff.post, staff.put):
        resp = method(API + path)  # a PUT without a CSRF token too: never the CSRF failure page
        assert resp.status_code == 404 and resp["Content-Type"] == "application/json"
        assert resp.json() == {"detail": "Not found."}


@pytest.mark.parametrize("value", ["²", "1_0", "1.0", " 1", "99999999999999999999", ""])
def test_a_campaign_filter_that_is_not_an_id_is_a_400(staff, value):
    resp = staff.get(f"{API}/creatives/", {"campaign": value})  # "²".isdigit(): was a 500
    assert resp.status_code == 400 and "campaign" in resp.json()


@pytest.mark.parametrize("n", ["1_0", " 5", "٥", "5\n"])
def test_a_decision_count_must_be_plain_digits(client, n):
    PlacementFactory(key="home-hero")
    resp = client.get(f"{API}/decisions/", {"placement": "home-hero", "n": n})
    assert resp.status_code == 400 and "n" in resp.json()


def test_a_session_id_with_a_trailing_newline_is_refused(client):
    # Python's "$" matches before a final newline; the schema's pattern (and now the server) does not
    resp = client.get(f"{API}/personalisation/", {"session": "a" * 20 + "\n"})
    assert resp.status_code == 400 and "session" in resp.json()


def test_a_nul_in_a_json_body_is_a_400(staff):
    resp = staff.post(f"{API}/campaigns/", {"advertiser": 1, "name": "a\x00b"}, format="json")
    assert resp.status_code == 400 and "NUL" in resp.json()["detail"]


@pytest.mark.parametrize("value", ["a\x01b", "\x1b[31m"])
def test_another_control_character_in_a_json_body_is_a_400(value):
    body = {"events": [{"kind": "search", "query": value}]}
    resp = APIClient(HTTP_USER_AGENT="Mozilla/5.0").post(f"{API}/events/", body, format="json")
    assert resp.status_code == 400 and "control character" in resp.json()["detail"]


def test_tab_newline_and_return_in_a_json_body_are_text(staff):
    advertiser = AdvertiserFactory()
    resp = staff.post(f"{API}/campaigns/", {"advertiser": advertiser.pk, "name": "a\tb\r\nc"}, format="json")
    assert resp.status_code == 201, resp.json()


@pytest.mark.parametrize("depth", [25, 450, 5000])  # 450: the walk used to recurse; 5000: the decoder itself
def test_a_deeply_nested_json_body_is_a_400(client, depth):
    body = "[" * depth + "]" * depth
    for path in ("/impressions/", "/events/"):  # (the campaign endpoints refuse an anonymous caller first)
        resp = client.post(API + path, body, content_type="application/json", HTTP_USER_AGENT="Mozilla/5.0")
        assert resp.status_code == 400, (path, resp.status_code)
        assert "deeper than" in resp.json()["detail"]


def test_the_body_must_be_json(staff):
    resp = staff.post(f"{API}/events/", {"events": "x"})  # multipart
    assert resp.status_code == 415


def test_types_are_not_converted(staff):
    advertiser = AdvertiserFactory()
    body = {"advertiser": str(advertiser.pk), "name": 5, "bid": "", "frequency_cap": "3"}
    body["audience_min_similarity"] = "1"
    errors = staff.post(f"{API}/campaigns/", body, format="json").json()
    assert set(errors) == {"advertiser", "name", "bid", "frequency_cap", "audience_min_similarity"}


def test_amounts_are_decimal_strings_or_numbers(staff):
    advertiser = AdvertiserFactory()
    body = {"advertiser": advertiser.pk, "name": "Numbers", "bid": 0.12345, "total_budget": "10.5"}
    resp = staff.post(f"{API}/campaigns/", body, format="json")
    assert resp.status_code == 201, resp.json()
    assert resp.json()["bid"] == "0.1234" and resp.json()["total_budget"] == "10.5000"  # half-even to 4 places


def test_the_campaign_list_shows_promoted_products_as_the_schema_says(staff):
    product = ProductFactory()
    CampaignFactory(products=[product])
    (campaign,) = staff.get(f"{API}/campaigns/").json()
    assert campaign["promoted_products"] == [str(product.pk)]  # was write-only in the schema


def test_an_app_logged_in_by_basic_auth_sets_consent_without_a_csrf_token(staff):
    resp = staff.post(f"{API}/personalisation/", {"allowed": False}, format="json")  # was a 403 (CSRF)
    assert resp.status_code == 200 and resp.json() == {"allowed": False}


def test_an_anonymous_browser_session_still_needs_the_csrf_token():
    browser = APIClient(enforce_csrf_checks=True)
    browser.get(f"{API}/personalisation/")
    resp = browser.post(f"{API}/personalisation/", {"allowed": False}, format="json")
    assert resp.status_code == 403


def test_failed_sign_ins_from_one_address_stop_being_checked(staff):
    from django.core.cache import cache

    cache.clear()
    wrong = APIClient(REMOTE_ADDR="203.0.113.9")
    wrong.credentials(HTTP_AUTHORIZATION="Basic " + base64.b64encode(b"staff-user:guess").decode())
    with adengine_settings(API_THROTTLE_RATES={"sign_in_failures": "3/min"}):
        codes = [wrong.get(f"{API}/campaigns/").status_code for _ in range(5)]
        assert codes[:3] == [401, 401, 401] or codes[:3] == [403, 403, 403]  # as the host's auth classes answer
        assert codes[3:] == [429, 429]
        right = APIClient(REMOTE_ADDR="203.0.113.9")
        right.credentials(HTTP_AUTHORIZATION="Basic " + base64.b64encode(b"staff-user:pw").decode())
        assert right.get(f"{API}/campaigns/").status_code == 429  # not even checked: the guess could be right
        assert staff.get(f"{API}/campaigns/").status_code == 200  # another address signs in
        anonymous = APIClient(REMOTE_ADDR="203.0.113.9")
        assert anonymous.get(f"{API}/").status_code == 200  # no credentials: nothing to refuse
    cache.clear()


def test_a_body_over_the_shops_limit_is_a_json_400(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = '{"events": [{"kind": "search", "query": "' + "a" * 2000 + '"}]}'
    resp = APIClient(HTTP_USER_AGENT="Mozilla/5.0").post(f"{API}/events/", body, content_type="application/json")
    assert resp.status_code == 400 and resp["Content-Type"] == "application/json"
    assert "larger than the 1000 bytes" in resp.json()["detail"]
