"""Landing pages: only the shop's own pages or allowed https hosts, at save time and at redirect time."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from adengine.models import Impression
from adengine.serving import decide, tokens
from adengine.validators import is_safe_landing, validate_landing_url
from tests.conftest import adengine_settings

pytestmark = pytest.mark.django_db

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"


@pytest.mark.parametrize(
    "url",
    [
        "/\\evil.example",
        "//evil.example/",
        "javascript:alert(1)",
        "https://evil.example/",
        "http://testserver/p/1",  # https only
        "/p/1\x00",
        "data:text/html,hi",
    ],
)
def test_off_site_or_unsafe_landing_pages_are_refused(url):
    assert not is_safe_landing(url)
    with pytest.raises(ValidationError):
        validate_landing_url(url)


@pytest.mark.parametrize("url", ["/", "/p/12/", "/search?q=tea", "https://testserver/sale"])
def test_shop_pages_are_allowed(url):
    assert is_safe_landing(url)
    validate_landing_url(url)


def test_an_allow_listed_host_is_allowed_over_https():
    with adengine_settings(LANDING_HOSTS=["brand.example"]):
        assert is_safe_landing("https://brand.example/spring")
        assert not is_safe_landing("http://brand.example/spring")


def test_a_campaign_with_an_off_site_landing_page_is_not_saved(make_campaign):
    campaign = make_campaign()
    campaign.landing_url = "/\\evil.example"
    with pytest.raises(ValidationError, match="landing_url"):
        campaign.full_clean(exclude=["promoted_products", "placements", "target_vector"])


def test_a_stored_unsafe_landing_page_is_never_followed(client, placement, make_campaign):
    # given an impression whose stored landing page is off-site (written before the check existed)
    make_campaign()
    (ad,) = decide(placement_key=placement.key, shopper=None).ads
    Impression.objects.filter(nonce=ad.nonce).update(landing_url="/\\evil.example")
    url = tokens.urls(ad.nonce)["click_url"]
    # when it is clicked, the shopper goes to the shop's home page
    first = client.get(url, HTTP_USER_AGENT=BROWSER, REMOTE_ADDR="203.0.113.5")
    assert first.status_code == 302 and first["Location"] == "/"
    # and the "already used" page links nowhere off-site
    again = client.get(url, HTTP_USER_AGENT=BROWSER, REMOTE_ADDR="203.0.113.5")
    assert again.status_code == 409 and "evil.example" not in again.content.decode()
