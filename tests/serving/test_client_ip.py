"""Throttles and per-IP limits use the client's address, never a client-written X-Forwarded-For."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.test import RequestFactory

from adengine.net import client_ip
from tests.conftest import adengine_settings

pytestmark = pytest.mark.django_db


def _request(xff: str | None, remote: str = "10.0.0.9"):
    extra = {"REMOTE_ADDR": remote}
    if xff is not None:
        extra["HTTP_X_FORWARDED_FOR"] = xff
    return RequestFactory().get("/", **extra)


def test_without_trusted_proxies_x_forwarded_for_is_ignored():
    assert client_ip(_request("1.2.3.4")) == "10.0.0.9"


def test_with_one_trusted_proxy_the_rightmost_hop_is_the_client():
    with adengine_settings(TRUSTED_PROXIES=1):
        # the client wrote "6.6.6.6"; our proxy appended the address it saw, 203.0.113.7
        assert client_ip(_request("6.6.6.6, 203.0.113.7")) == "203.0.113.7"
        assert client_ip(_request("not-an-ip")) == "10.0.0.9"
        assert client_ip(_request(None)) == "10.0.0.9"
    with adengine_settings(TRUSTED_PROXIES=2):
        assert client_ip(_request("6.6.6.6, 198.51.100.2, 203.0.113.7")) == "198.51.100.2"


def test_rotating_x_forwarded_for_does_not_escape_the_decision_throttle(client, placement):
    cache.clear()
    with adengine_settings(API_THROTTLE_RATES={"decisions": "5/min", "tracking": "100/min", "advertiser": "100/min"}):
        codes = [
            client.get(
                "/api/adengine/v1/decisions/", {"placement": placement.key}, HTTP_X_FORWARDED_FOR=f"198.51.100.{i}"
            ).status_code
            for i in range(8)
        ]
    cache.clear()
    assert codes[:5] == [200] * 5 and codes[5:] == [429] * 3
