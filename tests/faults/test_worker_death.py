"""kill -9 a worker in the middle of writing copy: the work is redone once, nothing is written twice, and a
request never stays "running" for ever (issue 11: a killed worker left "running 4/8" for ever)."""

from __future__ import annotations

import pytest

from adengine.models import Advertiser, Campaign, Creative, GenerationRequest
from adengine.services.creatives import request_copy, sweep_requests
from tests.conftest import adengine_settings
from tests.processes import use_broker, wait_for

pytestmark = pytest.mark.slow
N = 4  # variants: 4 headlines and 4 descriptions, in two model calls of 2


@pytest.fixture
def campaign(transactional_db):
    advertiser = Advertiser.objects.create(name="Sonica")
    return Campaign.objects.create(advertiser=advertiser, name="Earbuds", keywords=["wireless earbuds"])


def _status(request):
    request.refresh_from_db()
    return request.status


def _start_worker(celery_process, chat_server, *options, **env):
    worker = celery_process(
        "worker",
        "--loglevel",
        "INFO",
        "-Q",
        "adengine.interactive",
        *options,
        FAULT_COPYWRITER_URL=chat_server.url,
        **env,
    )
    worker.wait_for_line(r"ready\.", timeout=90)
    return worker


def test_a_pool_process_killed_mid_request_is_redone_at_once(campaign, broker, celery_process, chat_server):
    # given a worker (prefork, one pool process) writing copy: the model call is in progress
    worker = _start_worker(celery_process, chat_server, "--pool", "prefork", "--concurrency", "1")
    chat_server.hold.set()
    with use_broker(broker.url):
        request = request_copy(campaign=campaign, language="en", n=N)
    wait_for(chat_server.arrived.is_set, timeout=60, what="the worker to call the copywriter")
    assert _status(request) == "running" and request.attempts == 1
    # when its pool process is killed (kill -9, as the out-of-memory killer does)
    (child,) = worker.children()
    chat_server.arrived.clear()
    import os
    import signal

    os.kill(child, signal.SIGKILL)
    chat_server.hold.clear()
    # then the message goes back to the queue at once (reject_on_worker_lost) and a new pool process redoes it
    wait_for(lambda: _status(request) in ("done", "failed"), timeout=90, what="the request to finish")
    assert request.status == "done", request.error
    assert request.attempts == 2 and request.queued == 1
    assert "WorkerLostError" in worker.output() or "SIGKILL" in worker.output()
    # and each asset is written once
    assert Creative.objects.filter(campaign=campaign).count() == 2 * N
    assert set(Creative.objects.filter(campaign=campaign).values_list("request", flat=True)) == {request.pk}


def test_a_whole_worker_killed_mid_request_is_queued_again_by_the_sweeper(
    campaign, broker, celery_process, chat_server
):
    # given a worker writing copy whose model call takes longer than the bound on silence
    worker = _start_worker(celery_process, chat_server, "--pool", "solo")
    chat_server.hold.set()
    with use_broker(broker.url), adengine_settings(GENERATION_STALE_SECONDS=2):
        request = request_copy(campaign=campaign, language="en", n=N)
        wait_for(chat_server.arrived.is_set, timeout=60, what="the worker to call the copywriter")
        started = GenerationRequest.objects.get(pk=request.pk).heartbeat_at
        # a live worker keeps its request alive with heartbeats: the sweeper leaves it alone
        wait_for(
            lambda: (GenerationRequest.objects.get(pk=request.pk).heartbeat_at - started).total_seconds() > 3,
            timeout=30,
            what="heartbeats for longer than the bound",
        )
        assert sweep_requests()["requeued"] == 0 and _status(request) == "running"
        # when the whole worker is killed: its message waits for the visibility timeout (an hour)
        worker.kill()
        chat_server.hold.clear()
        _start_worker(celery_process, chat_server, "--pool", "solo")
        # then the sweeper sees the silence and queues the request again, once
        wait_for(lambda: sweep_requests()["requeued"], timeout=30, interval=0.5, what="the sweeper to re-queue")
        wait_for(lambda: _status(request) in ("done", "failed"), timeout=90, what="the request to finish")
        assert request.status == "done", request.error
        assert request.attempts == 2 and request.queued == 2
        assert sweep_requests() == {"requeued": 0, "failed": 0, "unreachable": 0}
    assert Creative.objects.filter(campaign=campaign).count() == 2 * N


def test_a_whole_worker_killed_mid_request_gets_its_message_back_after_the_visibility_timeout(
    campaign, broker, celery_process, chat_server
):
    # given workers whose broker hands an unacknowledged message out again after 5 s (an hour by default)
    worker = _start_worker(celery_process, chat_server, "--pool", "solo", CELERY_VISIBILITY_TIMEOUT="5")
    chat_server.hold.set()
    with use_broker(broker.url):
        request = request_copy(campaign=campaign, language="en", n=N)
    wait_for(chat_server.arrived.is_set, timeout=60, what="the worker to call the copywriter")
    # when the whole worker is killed mid-request and another starts
    worker.kill()
    chat_server.hold.clear()
    _start_worker(celery_process, chat_server, "--pool", "solo", CELERY_VISIBILITY_TIMEOUT="5")
    # then the same message comes back (no sweeper involved: queued once) and the request is redone, once
    wait_for(lambda: _status(request) in ("done", "failed"), timeout=90, what="the request to finish")
    assert request.status == "done", request.error
    assert request.attempts == 2 and request.queued == 1
    assert Creative.objects.filter(campaign=campaign).count() == 2 * N
