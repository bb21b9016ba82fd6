"""The sweeper of stuck copy requests and the claim a worker makes: re-queue once, then fail with a message."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from adengine.models import Advertiser, Campaign, GenerationRequest
from adengine.services.creatives import run_request, sweep_requests
from tests.conftest import adengine_settings
from tests.processes import use_broker


@pytest.fixture
def campaign(db):
    advertiser = Advertiser.objects.create(name="Sonica")
    return Campaign.objects.create(advertiser=advertiser, name="Earbuds", keywords=["wireless earbuds"])


def _request(campaign, *, status, silent_for, attempts=1, queued=1, task_id="t-1"):
    return GenerationRequest.objects.create(
        campaign=campaign,
        language="en",
        n=2,
        status=status,
        attempts=attempts,
        queued=queued,
        task_id=task_id,
        heartbeat_at=timezone.now() - timedelta(seconds=silent_for),
    )


def _queued_messages(broker, queue="adengine.interactive"):
    return broker.client().llen(queue)


def test_a_silent_running_request_is_queued_again_once(campaign, broker):
    # given a request whose worker went silent, and one whose worker is alive
    dead = _request(campaign, status="running", silent_for=300)
    alive = _request(campaign, status="running", silent_for=5)
    # when the sweeper runs
    with use_broker(broker.url):
        result = sweep_requests()
    # then only the silent one is queued again, with a new message on the interactive queue
    assert result == {"requeued": 1, "failed": 0, "unreachable": 0}
    dead.refresh_from_db(), alive.refresh_from_db()
    assert (dead.status, dead.queued) == ("queued", 2) and alive.status == "running"
    assert _queued_messages(broker) == 1
    # and a second sweep right after does nothing more
    with use_broker(broker.url):
        assert sweep_requests()["requeued"] == 0


def test_a_request_whose_worker_died_too_often_fails_with_a_message(campaign, broker):
    dead = _request(campaign, status="running", silent_for=300, attempts=2, queued=2)
    with use_broker(broker.url):
        assert sweep_requests() == {"requeued": 0, "failed": 1, "unreachable": 0}
    dead.refresh_from_db()
    assert dead.status == "failed" and dead.finished_at is not None
    assert "worker stopped answering" in dead.error and "attempt 2 of 2" in dead.error
    assert _queued_messages(broker) == 0


def test_a_request_queued_too_long_is_queued_again_then_failed_naming_the_queue(campaign, broker):
    # given a request queued long ago (its message lost with the broker's data, or no worker consumes the queue)
    lost = _request(campaign, status="queued", silent_for=7200, attempts=0, queued=1, task_id="")
    with use_broker(broker.url):
        assert sweep_requests()["requeued"] == 1
        lost.refresh_from_db()
        assert (lost.status, lost.queued) == ("queued", 2)
        # when it is still not started after the bound again
        GenerationRequest.objects.filter(pk=lost.pk).update(heartbeat_at=timezone.now() - timedelta(hours=2))
        assert sweep_requests()["failed"] == 1
    lost.refresh_from_db()
    assert lost.status == "failed" and "is a worker consuming 'adengine.interactive'?" in lost.error


def test_the_sweeper_leaves_the_request_alone_when_the_broker_is_down(campaign, broker):
    dead = _request(campaign, status="running", silent_for=300)
    broker.stop()
    with use_broker(broker.url):
        assert sweep_requests() == {"requeued": 0, "failed": 0, "unreachable": 1}
    dead.refresh_from_db()
    assert dead.status == "running" and dead.queued == 1  # the next sweep tries again


def test_a_redelivered_message_takes_over_but_a_duplicate_leaves_a_live_worker_alone(campaign):
    # given a request a live worker is writing (fresh heartbeat) under task t-1
    live = _request(campaign, status="running", silent_for=1)
    # when a duplicate message (another task id) arrives, it leaves the request to that worker
    assert run_request(str(live.pk), task_id="t-2").attempts == 1
    # and a worker that has started it as often as allowed does not start it again: it fails, saying why
    with adengine_settings(GENERATION_MAX_ATTEMPTS=1):
        done = run_request(str(live.pk), task_id="t-1")  # t-1 again: its worker died on it
    assert done.status == "failed" and "worker stopped 1 time(s)" in done.error


def test_a_finished_request_is_not_redone_by_a_late_message(campaign):
    finished = _request(campaign, status="done", silent_for=1000, attempts=1)
    assert run_request(str(finished.pk), task_id="t-1").attempts == 1
