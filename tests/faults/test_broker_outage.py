"""Stop and restart the broker: queued work survives, the worker resumes, pages keep their ads, and a copy
request made meanwhile is answered 503 and stored as failed (issue 11: a 500 and a request never queued; the
worker exited on a broker outage)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from adengine.models import GenerationRequest
from adengine.tasks import update_strategy
from tests.factories import AdvertiserFactory, CampaignFactory, CreativeFactory, PlacementFactory, ProductFactory
from tests.processes import use_broker

pytestmark = pytest.mark.slow


def _succeeded(task_id: str) -> str:
    return rf"adengine\.update_strategy\[{task_id}\] succeeded"


def test_queued_work_survives_a_broker_restart_and_the_worker_resumes_after_an_outage(
    transactional_db, broker, celery_process, client, admin_user
):
    # given a task queued while no worker runs
    with use_broker(broker.url):
        before = update_strategy.apply_async()
    assert broker.client().llen("adengine.strategy") == 1
    # when the broker restarts, then the task is still queued, and a worker started afterwards runs it
    broker.stop()
    broker.start()
    assert broker.client().llen("adengine.strategy") == 1
    worker = celery_process("worker", "--loglevel", "INFO", "--pool", "prefork", "--concurrency", "1")
    worker.wait_for_line(_succeeded(before.id), timeout=90)

    # when the broker goes away while the worker runs
    product = ProductFactory()
    PlacementFactory(key="product-sidebar")
    campaign = CampaignFactory(products=[product], advertiser=AdvertiserFactory())
    CreativeFactory(campaign=campaign)
    broker.stop()
    worker.wait_for_line(r"Cannot connect to redis|Connection to broker lost", timeout=60)
    with use_broker(broker.url):
        # then pages still render with their ads
        page = client.get(reverse("shop:product", args=[product.sku]))
        assert page.status_code == 200 and "Sponsored" in page.content.decode()
        # and a copy request is answered 503 with a message, and stored as failed with the reason
        client.force_login(admin_user)
        url = reverse("adengine-api:campaign-generate", args=[campaign.pk])
        response = client.post(url, {"language": "en", "n": 2}, content_type="application/json")
    assert response.status_code == 503, response.content
    body = response.json()
    assert "unavailable right now" in body["detail"] and body["request"]["status"] == "failed"
    failed = GenerationRequest.objects.get(campaign=campaign)
    assert failed.status == "failed" and "could not be queued" in failed.error and "broker" in failed.error
    assert str(broker.sock) not in response.content.decode()  # the broker's address stays in the server's log

    # when the broker comes back, then the same worker process resumes: a task queued now runs
    broker.start()
    with use_broker(broker.url):
        after = update_strategy.apply_async()
    worker.wait_for_line(_succeeded(after.id), timeout=90)
    assert worker.proc.poll() is None


def test_the_admins_generate_action_says_the_broker_is_down(transactional_db, admin_client, broker):
    # given two campaigns to write copy for, and the broker down
    campaigns = [CampaignFactory(keywords=["wireless earbuds"], languages=["en"]) for _ in range(2)]
    broker.stop()
    # when the admin asks for copy
    with use_broker(broker.url):
        response = admin_client.post(
            reverse("admin:adengine_campaign_changelist"),
            {"action": "generate_copy", "_selected_action": [c.pk for c in campaigns]},
            follow=True,
        )
    # then the page says so (no 500), the first request is stored as failed with the reason, no other is made
    assert response.status_code == 200
    text = response.content.decode()
    assert "Copy generation is unavailable right now" in text
    (failed,) = GenerationRequest.objects.all()
    assert failed.status == "failed" and failed.error.startswith("could not be queued")


def test_a_copy_request_is_503_while_the_broker_is_down_even_with_atomic_requests(
    transactional_db, admin_client, broker
):
    from django.db import connection

    campaign = CampaignFactory(keywords=["wireless earbuds"], languages=["en"])
    broker.stop()
    connection.settings_dict["ATOMIC_REQUESTS"] = True  # a host that wraps every view in a transaction
    try:
        with use_broker(broker.url):
            url = reverse("adengine-api:campaign-generate", args=[campaign.pk])
            response = admin_client.post(url, {"language": "en", "n": 2}, content_type="application/json")
    finally:
        connection.settings_dict["ATOMIC_REQUESTS"] = False
    assert response.status_code == 503 and response["Retry-After"] == "60"
    assert "could not be queued" in response.json()["request"]["error"]
    assert GenerationRequest.objects.get().status == "failed"
