"""Two web processes and two Celery workers on two queues, under concurrent traffic: a frequency cap and the
budgets hold across them.

Everything is real: two gunicorn servers (one process each) on the test database, a worker on adengine's
strategy queue and one on its interactive and batch queues, beat sending the periodic tasks every second, and
a broker of the test's own. Eight clients ask both servers for decisions for the same twelve app sessions at
once and click every ad on the *other* server, so that each process's own view of what a shopper saw and of
what a campaign spent is stale all along.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Sum

from adengine.models import AdEvent, CampaignDay, Impression, Shopper
from adengine.serving import tokens
from tests.faults.servers import Server

pytestmark = pytest.mark.django_db(transaction=True)

SESSIONS = [f"scale-session-{i:04d}-abcdef" for i in range(12)]
CAP = 2


@pytest.mark.parametrize("counters", ["database", "redis"])
def test_a_cap_and_the_budgets_hold_across_two_web_servers_and_two_workers(
    placement, make_campaign, tmp_path, broker, celery_process, counters
):
    # given a capped campaign with budget to spare (the cap binds) and an uncapped one with a budget of 8 clicks
    # (the budget binds), both paid by the click
    capped = make_campaign(frequency_cap=CAP, bid=Decimal("0.30"), total_budget=Decimal("30.00"), headlines=2)
    uncapped = make_campaign(bid=Decimal("0.25"), total_budget=Decimal("2.00"), headlines=2)
    where = "database" if counters == "database" else broker.url
    env = {"CELERY_BROKER_URL": broker.url, "CELERY_RESULT_BACKEND": broker.url}
    # and two web servers of one process each, two workers on two queues, and beat
    webs = [
        Server(
            "gunicorn",
            connection.settings_dict["NAME"],
            tmp_path / f"web{i}.log",
            workers=1,
            settings="tests.scale.web_settings",
            env={**env, "ADENGINE_TEST_SHARED_COUNTERS": where},
        )
        for i in range(2)
    ]
    settings = "tests.scheduling.beat_settings"  # periodic tasks due every second
    strategy = celery_process("worker", "-Q", "adengine.strategy", "-n", "strategy@%h", "--pool", "solo",
                              "--loglevel", "INFO", settings=settings)  # fmt: skip
    batch = celery_process("worker", "-Q", "adengine.interactive,adengine.batch", "-n", "batch@%h", "--pool", "solo",
                           "--loglevel", "INFO", settings=settings)  # fmt: skip
    celery_process("beat", "--max-interval", "1", "--schedule", str(tmp_path / "schedule"), settings=settings)
    try:
        for web in webs:
            web.wait_ready()

        # when eight clients ask both servers for ads for the same shoppers at once, and click every ad
        def visit(i: int) -> list[tuple[str, str]]:
            session = SESSIONS[i % len(SESSIONS)]
            web = (i + i // len(SESSIONS)) % 2  # each session's visits alternate between the servers
            status, body = webs[web].get(f"/api/adengine/v1/decisions/?placement=home-hero&session={session}")
            assert status == 200, body[:500]
            shown = []
            for ad in json.loads(body)["ads"]:
                shown.append((session, ad["click_url"]))
                status, _ = webs[1 - web].get("/ads/c/" + ad["click_url"].split("/ads/c/", 1)[1])
                assert status in (302, 303), status
            return shown

        with ThreadPoolExecutor(8) as pool:
            shown = [ad for visit_ads in pool.map(visit, range(360)) for ad in visit_ads]
    finally:
        for web in webs:
            web.stop()  # SIGTERM: each writes what its impression log still holds
    nonce_of = {url: tokens.read("click", url.rstrip("/").rsplit("/", 1)[-1]).nonce for _, url in shown}

    # then every ad shown is in the log, written by one server or the other
    campaign_of = dict(Impression.objects.filter(nonce__in=nonce_of.values()).values_list("nonce", "campaign_id"))
    assert len(campaign_of) == len(shown)
    # and no shopper saw the capped campaign more than its cap, though most reached it
    per_shopper = Counter(session for session, url in shown if campaign_of[nonce_of[url]] == capped.pk)
    assert max(per_shopper.values()) == CAP, per_shopper
    assert sum(n == CAP for n in per_shopper.values()) >= len(SESSIONS) // 2, per_shopper
    assert len(Shopper.objects.filter(impressions__campaign=capped).distinct()) == len(per_shopper)
    # and the capped campaign spent a click's price per ad shown, the other exactly its budget and not a cent more,
    # every cent of it billed for a click
    clicks = defaultdict(Counter)
    for event in AdEvent.objects.filter(kind=AdEvent.Kind.CLICK).select_related("impression"):
        clicks[event.impression.campaign_id][event.status] += 1
    capped.refresh_from_db()
    uncapped.refresh_from_db()
    assert capped.spent == capped.bid * sum(per_shopper.values()) < capped.total_budget
    assert uncapped.spent == uncapped.total_budget, (uncapped.spent, clicks)
    assert clicks[uncapped.pk][AdEvent.Status.ACCEPTED] == uncapped.total_budget / uncapped.bid
    for campaign in (capped, uncapped):
        billed = AdEvent.objects.filter(impression__campaign=campaign, kind=AdEvent.Kind.CLICK).aggregate(
            s=Sum("charge")
        )
        assert billed["s"] == campaign.spent == CampaignDay.objects.get(campaign=campaign).spent
    # and both workers did their share from their own queues meanwhile
    strategy.wait_for_line(r"Task adengine\.update_strategy\[[0-9a-f-]+\] succeeded", timeout=60)
    batch.wait_for_line(r"Task adengine\.refresh_interests\[[0-9a-f-]+\] succeeded", timeout=60)
    assert "Task adengine.refresh_interests[" not in strategy.output()  # each worker kept to its queues
    assert "Task adengine.update_strategy[" not in batch.output()
