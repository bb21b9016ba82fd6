"""A web process stopped right after a burst has written every impression it served; one killed outright
loses its pending rows, and their clicks are still honoured from the signed links."""

from __future__ import annotations

import math
import signal
from decimal import Decimal

import pytest
from django.db import connection

from adengine.models import AdEvent, Impression
from adengine.serving import tokens
from adengine.serving.propensity import fill

from .servers import BROWSER, Server, burst

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def served(placement, make_campaign):
    """The home page's placement (two ads) and three CPC campaigns, committed for the server to see."""
    placement.max_ads = 2
    placement.save()
    return [make_campaign(headlines=2) for _ in range(3)]


@pytest.mark.parametrize("kind", ["runserver", "gunicorn"])
def test_sigterm_right_after_a_burst_writes_every_impression(served, tmp_path, kind):
    # given a web server whose impression writer would wait an hour before writing
    server = Server(kind, connection.settings_dict["NAME"], tmp_path / "server.log")
    try:
        server.wait_ready()
        # when it serves a burst of decisions and pages, and is stopped with SIGTERM as soon as the last answer is in
        served_tokens = burst(server, decisions=150, pages=30)
    finally:
        server.stop(signal.SIGTERM)
    nonces = {tokens.read("view", t).nonce for t in served_tokens}
    assert len(nonces) == 2 * (150 + 30)  # two ads a view, on every page and in every answer
    # then every impression it served is in the table
    written = Impression.objects.filter(nonce__in=nonces)
    assert written.count() == len(nonces), f"{written.count()} of {len(nonces)} written\n{server.output()}"
    # and its propensity can be computed from what was logged (what the strategy queue's task does)
    assert fill(impression_ids=list(written.values_list("pk", flat=True)))["unknown"] == 0
    assert not any(math.isnan(p) for p in written.values_list("propensity", flat=True))


def test_a_click_on_an_impression_its_killed_server_never_wrote_is_honoured(served, tmp_path, client):
    # given a server that served ads and was then killed outright (no chance to write anything)
    server = Server("runserver", connection.settings_dict["NAME"], tmp_path / "server.log")
    try:
        server.wait_ready()
        served_tokens = burst(server, decisions=3, pages=0, clients=1)
    finally:
        server.stop(signal.SIGKILL)
    assert not Impression.objects.exists()
    # when the shopper clicks one of its ads
    token = served_tokens[0]
    data = tokens.read("click", token)
    resp = client.get(f"/ads/c/{token}/", HTTP_USER_AGENT=BROWSER, REMOTE_ADDR="203.0.113.9")
    # then the click lands on the ad's page and is billed once, against an impression restored from the link
    impression = Impression.objects.get(nonce=data.nonce)
    assert resp.status_code == 302 and resp["Location"] == impression.landing_url
    assert impression.campaign_id == data.row["campaign_id"] and impression.creative_id == data.row["creative_id"]
    assert math.isnan(impression.propensity) and impression.context == {"restored": True}
    event = AdEvent.objects.get(kind="click")
    assert event.impression_id == impression.pk and event.charge == Decimal("1.00")
    # and a replay is refused, not billed again
    again = client.get(f"/ads/c/{token}/", HTTP_USER_AGENT=BROWSER, REMOTE_ADDR="203.0.113.9")
    assert again.status_code == 409 and AdEvent.objects.filter(charge__gt=0).count() == 1
