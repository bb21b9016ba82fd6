"""NUL and other control bytes in a request are a 400 that says so, never a 500 or a 503."""

from __future__ import annotations

import base64

import pytest

pytestmark = pytest.mark.django_db


def _basic(raw: bytes) -> str:
    return "Basic " + base64.b64encode(raw).decode()


@pytest.mark.parametrize(
    "url",
    [
        "/api/adengine/v1/campaigns/",
        "/api/adengine/v1/decisions/?placement=home-hero",
        "/api/adengine/v1/events/",
    ],
)
def test_a_nul_byte_in_a_basic_auth_user_name_is_a_400(client, url):
    resp = client.get(url, HTTP_AUTHORIZATION=_basic(b"ad\x00min:pw"))
    assert resp.status_code == 400
    assert "control character" in resp.json()["detail"]


def test_a_nul_byte_in_the_query_is_a_400(client, placement):
    resp = client.get("/api/adengine/v1/decisions/", {"placement": "home\x00hero"})
    assert resp.status_code == 400


def test_ordinary_credentials_still_work(client, placement):
    resp = client.get("/api/adengine/v1/decisions/", {"placement": placement.key}, HTTP_AUTHORIZATION=_basic(b"x:y"))
    assert resp.status_code in (200, 401, 403)
