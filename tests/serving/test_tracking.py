"""Signed tracking: one counted view and click per impression, no open redirect, bots and floods not billed."""

from __future__ import annotations

import math
import uuid
from decimal import Decimal

import pytest
from django.core import signing
from django.test import override_settings
from django.urls import reverse

from adengine.models import AdEvent, Campaign, Impression
from adengine.services.tracking import truncate_ip
from adengine.serving import decide, tokens
from tests.conftest import adengine_settings

pytestmark = pytest.mark.django_db

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"


@pytest.fixture
def served_ad(placement, make_campaign):
    """One CPC ad at bid 1.00 served to an anonymous visitor, with its signed URLs."""
    campaign = make_campaign()
    (ad,) = decide(placement_key=placement.key, shopper=None).ads
    return campaign, ad, tokens.urls(ad.nonce)


def click(client, url, ua=BROWSER, ip="203.0.113.77"):
    return client.get(url, HTTP_USER_AGENT=ua, REMOTE_ADDR=ip)


def test_click_redirects_to_the_stored_landing_page_and_bills_once(client, served_ad):
    campaign, ad, urls = served_ad
    # when the shopper clicks
    resp = click(client, urls["click_url"])
    # then they land on the promoted product, and one click is billed at the bid
    assert resp.status_code == 302 and resp["Location"] == ad.product.url
    event = AdEvent.objects.get(kind="click")
    assert event.status == "accepted" and event.charge == Decimal("1.00")
    campaign.refresh_from_db()
    assert campaign.spent == Decimal("1.00")
    # and the IP is stored truncated
    assert event.ip == "203.0.113.0"
    # when the same link is replayed, it is refused, logged as a duplicate and not billed
    again = click(client, urls["click_url"])
    assert again.status_code == 409
    assert AdEvent.objects.filter(kind="click", status="duplicate").count() == 1
    campaign.refresh_from_db()
    assert campaign.spent == Decimal("1.00")


def test_tampered_and_foreign_tokens_are_refused_and_not_billed(client, served_ad):
    _, ad, urls = served_ad
    good = urls["click_url"].rstrip("/").split("/")[-1]
    tampered = good[:-2] + ("AA" if not good.endswith("AA") else "BB")
    assert click(client, reverse("adengine:click", args=[tampered])).status_code == 400
    # a token signed by the same site for another purpose (another salt) is not ours
    other = signing.dumps(ad.nonce.hex, salt="someone.else", compress=False)
    assert click(client, reverse("adengine:click", args=[other])).status_code == 400
    # a well-signed token for an impression that does not exist
    forged = tokens.make(nonce=uuid.uuid4())
    assert click(client, reverse("adengine:click", args=[forged])).status_code == 404
    assert not AdEvent.objects.exists()


def test_expired_links_are_refused(client, served_ad):
    _, _, urls = served_ad
    with adengine_settings(TRACKING_CLICK_MAX_AGE=-1):
        assert click(client, urls["click_url"]).status_code == 410
    with adengine_settings(TRACKING_VIEW_MAX_AGE=-1):  # each URL has its own lifetime
        assert client.get(urls["view_url"], HTTP_USER_AGENT=BROWSER).status_code == 410
        assert click(client, urls["click_url"]).status_code == 302
    assert AdEvent.objects.filter(kind="view").count() == 0


def test_landing_comes_from_the_impression_never_the_request(client, served_ad):
    _, ad, urls = served_ad
    resp = client.get(urls["click_url"] + "?next=https://evil.example/", HTTP_USER_AGENT=BROWSER)
    assert resp["Location"] == ad.product.url
    # a token carrying its own URL is not a token we signed
    evil = signing.dumps([ad.nonce.hex, "https://evil.example/"], salt=tokens.SALT)
    assert click(client, reverse("adengine:click", args=[evil])).status_code == 400


@pytest.mark.parametrize(
    "ua", ["Googlebot/2.1 (+http://www.google.com/bot.html)", "curl/8.5.0", "", "Mozilla/5.0 HeadlessChrome/131"]
)
def test_bots_are_counted_but_not_billed(client, served_ad, ua):
    campaign, ad, urls = served_ad
    resp = click(client, urls["click_url"], ua=ua)
    assert resp.status_code == 302  # the crawler is not told
    event = AdEvent.objects.get()
    assert event.status == "bot" and event.charge == 0
    campaign.refresh_from_db()
    assert campaign.spent == 0


def test_per_ip_rate_limit(client, placement, make_campaign):
    campaign = make_campaign()
    with adengine_settings(TRACKING_RATE_LIMITS={"view": 100, "click": 3}):
        statuses = []
        for _ in range(5):
            (ad,) = decide(placement_key=placement.key, shopper=None).ads
            click(client, tokens.urls(ad.nonce)["click_url"])
            statuses.append(AdEvent.objects.latest("pk").status)
        # another network is not limited
        (ad,) = decide(placement_key=placement.key, shopper=None).ads
        click(client, tokens.urls(ad.nonce)["click_url"], ip="198.51.100.5")
    assert statuses == ["accepted"] * 3 + ["rate_limited"] * 2
    assert AdEvent.objects.latest("pk").status == "accepted"
    campaign.refresh_from_db()
    assert campaign.spent == Decimal("4.00")


def test_cpm_bills_views_once(client, placement, make_campaign):
    campaign = make_campaign(pricing=Campaign.Pricing.CPM, bid=Decimal("5.00"))
    (ad,) = decide(placement_key=placement.key, shopper=None).ads
    urls = tokens.urls(ad.nonce)
    first = client.get(urls["view_url"], HTTP_USER_AGENT=BROWSER)
    assert first.status_code == 200 and first["Content-Type"] == "image/gif"
    assert client.get(urls["view_url"], HTTP_USER_AGENT=BROWSER).status_code == 409
    click(client, urls["click_url"])  # CPM: the click is counted, not billed
    campaign.refresh_from_db()
    assert campaign.spent == Decimal("0.005")
    assert Impression.objects.get(nonce=ad.nonce).viewed_at is not None
    assert AdEvent.objects.get(kind="click").charge == 0


def test_a_click_beyond_the_budget_is_counted_not_billed(client, placement, make_campaign):
    campaign = make_campaign(total_budget=Decimal("1.50"))
    ads = [decide(placement_key=placement.key, shopper=None).ads[0] for _ in range(2)]
    for ad in ads:
        click(client, tokens.urls(ad.nonce)["click_url"])
    assert list(AdEvent.objects.order_by("pk").values_list("status", flat=True)) == ["accepted", "over_budget"]
    campaign.refresh_from_db()
    assert campaign.spent == Decimal("1.00")


@pytest.mark.parametrize(
    "ip,expected",
    [("203.0.113.77", "203.0.113.0"), ("2001:db8:abcd:12::1", "2001:db8:abcd::"), ("nonsense", None), ("", None)],
)
def test_truncate_ip(ip, expected):
    assert truncate_ip(ip) == expected


@pytest.mark.django_db(transaction=True)
def test_async_log_writes_impressions_and_hands_their_propensities_to_the_strategy_queue(
    client, placement, make_campaign, monkeypatch
):
    # given the production mode: impressions are written by the log's background thread, and the ids it wrote go
    # to the propensity task (captured here instead of the broker)
    from adengine import tasks
    from adengine.serving.log import impression_log

    sent: list[list[int]] = []
    monkeypatch.setattr(
        tasks.fill_propensities, "apply_async", lambda kwargs, **kw: sent.append(kwargs["impression_ids"])
    )
    campaign = make_campaign(headlines=3)
    with adengine_settings(SERVING_LOG_MODE="async", SERVING_LOG_FLUSH_SECONDS=30, PROPENSITY_FILL_SECONDS=0):
        # when an ad is chosen, nothing is written yet (the writer waits for its batch)
        (ad,) = decide(placement_key=placement.key, shopper=None).ads
        assert not Impression.objects.exists()
        # then its click, arriving first, still finds it (this process's pending rows are flushed), its
        # propensity not computed yet: no Monte-Carlo in the web process
        resp = click(client, tokens.urls(ad.nonce)["click_url"])
        assert resp.status_code == 302
        imp = Impression.objects.get(nonce=ad.nonce)
        assert math.isnan(imp.propensity) and imp.campaign_id == campaign.pk
        # and the background thread writes the rest by itself, and sends what it wrote to the propensity task
        (other,) = decide(placement_key=placement.key, shopper=None).ads
        impression_log._wake.set()
        import time

        deadline = time.monotonic() + 10
        while (
            not Impression.objects.filter(nonce=other.nonce).exists() or len(sum(sent, [])) < 2
        ) and time.monotonic() < deadline:
            impression_log._wake.set()
            time.sleep(0.05)
        written = Impression.objects.filter(nonce__in=[ad.nonce, other.nonce])
        assert sorted(sum(sent, [])) == sorted(written.values_list("pk", flat=True))
    impression_log.stop()
    # when the task runs (a strategy worker), the propensities are filled
    assert tasks.fill_propensities(impression_ids=sum(sent, [])) == {"filled": 2, "unknown": 0}
    assert all(0 < p <= 1 for p in written.values_list("propensity", flat=True))


APP_UAS = ["okhttp/4.12.0", "MyShop/2.3 CFNetwork/1410.0.3 Darwin/22.6.0", "Dart/3.2 (dart:io)"]
SCRIPTED = [
    "python-httpx/0.27.0",
    "Python/3.11 aiohttp/3.9.1",
    "axios/1.6.2",
    "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)",
    "undici",
    "PostmanRuntime/7.36.0",
    "Mozilla/5.0 (Linux; Android 11) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/90.0 Mobile Safari/537.36 "
    "Chrome-Lighthouse",
]


@pytest.mark.parametrize("ua", APP_UAS)
def test_app_http_clients_count_as_people_for_ads_an_app_asked_for(ua):
    from adengine.services.tracking import is_bot

    assert not is_bot(ua, app=True)


def test_an_app_http_client_on_a_storefront_ad_is_left_to_the_crawler_list():
    from adengine.services.tracking import is_bot

    assert is_bot("okhttp/4.12.0", app=False)  # crawlerdetect lists it: a script fetching a web page


@pytest.mark.parametrize("ua", SCRIPTED)
def test_scripting_clients_and_load_tools_are_bots_even_for_api_ads(ua):
    from adengine.services.tracking import is_bot

    assert is_bot(ua, app=True) and is_bot(ua, app=False)


def test_browsers_are_people():
    from adengine.services.tracking import is_bot

    assert not is_bot(BROWSER) and not is_bot(BROWSER, app=True)


def test_an_android_apps_click_on_an_api_ad_is_billed(client, placement, make_campaign):
    # given an ad the app asked for through the decision API
    make_campaign()
    data = client.get("/api/adengine/v1/decisions/", {"placement": placement.key, "session": "a" * 24}).json()
    click_url = data["ads"][0]["click_url"].replace("http://testserver", "")
    # when the app opens its click URL with OkHttp
    resp = client.get(click_url, HTTP_USER_AGENT="okhttp/4.12.0", REMOTE_ADDR="203.0.113.40")
    # then the click is counted and billed
    assert resp.status_code == 302
    event = AdEvent.objects.get(kind="click")
    assert event.status == "accepted" and event.charge == Decimal("1.00")


def test_the_per_ip_limit_is_a_sliding_minute(client, placement, make_campaign):
    """Events of the previous minute still count, weighted by how much of it is within the last 60 s."""
    import datetime as dt
    import time

    from django.utils import timezone

    from adengine.models import RateCounter
    from adengine.services.tracking import purge_rate_counters

    make_campaign()
    while timezone.now().second >= 57:  # the click must fall in the same minute as the counters below
        time.sleep(0.5)
    minute = timezone.now().replace(second=0, microsecond=0)
    # given a network that clicked 3 times (its limit) in the minute before this one, and an old counter
    RateCounter.objects.create(key="click:203.0.113.0", minute=minute - dt.timedelta(minutes=1), count=3)
    RateCounter.objects.create(key="click:203.0.113.0", minute=minute - dt.timedelta(minutes=5), count=50)
    with adengine_settings(TRACKING_RATE_LIMITS={"view": 100, "click": 3}):
        (ad,) = decide(placement_key=placement.key, shopper=None).ads
        click(client, tokens.urls(ad.nonce)["click_url"])
    # then a click early in this minute is still over the limit (unless the clock just turned 59 s)
    elapsed = (timezone.now() - minute).total_seconds() / 60
    expected = "rate_limited" if 3 * (1 - elapsed) + 1 > 3 else "accepted"
    assert AdEvent.objects.get().status == expected
    # and the strategy job's housekeeping drops the counters that no longer matter
    assert purge_rate_counters() == 1
    assert not RateCounter.objects.filter(minute__lt=minute - dt.timedelta(minutes=1)).exists()


def test_a_token_does_not_name_its_shopper_to_whoever_decodes_it():
    row = (3, 7, 11, None, 13, 424242, "en", 0, 1_700_000_000_000_000)  # ROW_FIELDS, the shopper's id 6th
    first, second = uuid.uuid4(), uuid.uuid4()
    tokens_of_one_shopper = [tokens.make(nonce=n, row=row) for n in (first, second)]
    carried = [signing.loads(t, salt=tokens.SALT)[1 + 5] for t in tokens_of_one_shopper]  # what anyone can read
    assert all("424242" not in str(c) for c in carried) and carried[0] != carried[1]  # nor linkable to each other
    assert [tokens.read("click", t).row["shopper_id"] for t in tokens_of_one_shopper] == [424242, 424242]
    assert tokens.read("click", tokens.make(nonce=first, row=(*row[:5], None, *row[6:]))).row["shopper_id"] is None
    # a token signed before ids were masked (the number itself) is still honoured while it lives
    older = signing.dumps([first.hex, *row], salt=tokens.SALT, compress=False)
    assert tokens.read("click", older).row["shopper_id"] == 424242
    # a masked id read under another SECRET_KEY would be another number: the key is part of the pad
    with override_settings(SECRET_KEY="another-key-" + "x" * 50):
        resigned = signing.dumps([first.hex, *row[:5], carried[0], *row[6:]], salt=tokens.SALT, compress=False)
        assert tokens.read("click", resigned).row["shopper_id"] != 424242
