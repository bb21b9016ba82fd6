"""Copy requests say where they stand: place in line, progress, and an estimate learnt from finished requests."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from adengine.models import Advertiser, Campaign, GenerationRequest
from adengine.selectors.generation import duration, pace, queue_state, queue_states
from adengine.services.creatives import request_copy, run_request
from tests.conftest import adengine_settings

pytestmark = pytest.mark.django_db
NOW = timezone.now()


@pytest.fixture
def shop_campaign():
    return Campaign.objects.create(
        advertiser=Advertiser.objects.create(name="Sonica"), name="Earbuds", keywords=["wireless earbuds"]
    )


def make(campaign, *, status="queued", n=8, progress=0, created=0.0, started=None, finished=None):
    """A request created ``created`` seconds ago (started / finished: seconds ago too)."""
    req = GenerationRequest.objects.create(campaign=campaign, language="en", n=n, status=status, progress=progress)
    ago = lambda s: None if s is None else NOW - timedelta(seconds=s)  # noqa: E731
    GenerationRequest.objects.filter(pk=req.pk).update(
        created_at=ago(created), started_at=ago(started), finished_at=ago(finished)
    )
    req.refresh_from_db()
    return req


def history(campaign):
    """Three finished requests of 4 variants that took 40, 80 and 120 s: a median of 20 s a variant."""
    for i, seconds in enumerate((40, 80, 120)):
        make(campaign, status="done", n=4, progress=4, created=5000 + i, started=4000 + seconds, finished=4000)
    # (a failed one and one from before started_at was recorded teach nothing)
    make(campaign, status="failed", n=4, created=4000, started=3000, finished=2999)
    make(campaign, status="done", n=4, created=4000, finished=3000)


def test_without_history_a_queued_request_has_a_place_but_no_estimate(shop_campaign):
    # given two queued requests and nothing finished yet
    first = make(shop_campaign, created=60)
    second = make(shop_campaign, created=30)
    # when their state is read
    states = queue_states([first, second], now=NOW)
    # then each has its place in line and no invented estimate
    assert (states[first.pk].position, states[first.pk].ahead) == (1, 0)
    assert (states[second.pk].position, states[second.pk].ahead) == (2, 1)
    assert states[second.pk].remaining_seconds is None
    assert states[second.pk].queue == "adengine.interactive"
    words = states[second.pk].describe()
    assert "number 2 in line" in words and "1 queued before it" in words and "no estimate yet" in words
    assert "next in line" in states[first.pk].describe()


def test_the_pace_leaves_out_the_first_request_s_model_loading(shop_campaign):
    # given three finished requests of 4 variants: the first took 120 s, 96 of them loading and converting the
    # model (as recorded), the others 28 and 32 s; and one with a nonsense loading time, which is ignored
    for i, (took, loading) in enumerate(((120, 96.0), (28, 0.0), (32, None), (36, True))):
        req = make(shop_campaign, status="done", n=4, progress=4, created=5000 + i, started=4000 + took, finished=4000)
        stats = {"seconds": 1.0} if loading is None else {"seconds": 1.0, "load_seconds": loading}
        GenerationRequest.objects.filter(pk=req.pk).update(stats=stats)
    # then the pace is the median time per variant without the loading: 6, 7, 8 and 9 s, median 7.5 s (8.5 s if the
    # loading were counted)
    assert pace().seconds_per_variant == pytest.approx(7.5) and pace().history == 4


def test_the_estimate_is_the_work_ahead_at_the_median_pace(shop_campaign):
    # given a median pace of 20 s a variant, one request being written and three queued
    history(shop_campaign)
    assert pace().seconds_per_variant == pytest.approx(20.0) and pace().history == 3
    make(shop_campaign, status="running", n=8, progress=2, created=600, started=30)
    a = make(shop_campaign, n=2, created=300)
    b = make(shop_campaign, n=4, created=200)
    c = make(shop_campaign, n=8, created=100)
    # when the last one's state is read
    state = queue_state(c, now=NOW)
    # then it is third in line, behind the one being written
    assert (state.position, state.ahead, state.running) == (3, 2, 1)
    # and its estimate: what is left of the running one at its own rate (2 variants in 30 s: 6 more take 90 s)
    # plus the variants queued before it and its own at 20 s each
    assert state.remaining_seconds == pytest.approx(90 + (2 + 4 + 8) * 20, abs=1)
    words = state.describe()
    assert "number 3 in line (2 queued before it, 1 being written)" in words
    assert "about 6 min" in words and "median of the last 3 finished requests" in words
    # and the first in line waits only for the running one and itself
    assert queue_state(a, now=NOW).remaining_seconds == pytest.approx(90 + 2 * 20, abs=1)
    assert queue_state(b, now=NOW).position == 2


def test_a_running_request_shows_its_progress_and_the_time_left_at_its_own_rate(shop_campaign):
    # given a request that wrote 3 of 8 variants in 60 s
    writing = make(shop_campaign, status="running", n=8, progress=3, created=100, started=60)
    # when its state is read
    state = queue_state(writing, now=NOW)
    # then it says how far it is and how long the other 5 take at 20 s each
    assert (state.position, state.progress, state.n) == (None, 3, 8)
    assert state.elapsed_seconds == pytest.approx(60, abs=1)
    assert state.remaining_seconds == pytest.approx(100, abs=1)
    assert "writing: 3 of 8 variants; done in about 2 min (at its own rate so far)" == state.describe()


def test_a_running_request_before_its_first_variant_falls_back_on_the_pace(shop_campaign):
    history(shop_campaign)
    writing = make(shop_campaign, status="running", n=4, progress=0, created=100, started=30)
    # 4 variants at 20 s, 30 s of them already spent
    assert queue_state(writing, now=NOW).remaining_seconds == pytest.approx(50, abs=1)
    # without history it says so
    GenerationRequest.objects.filter(status="done").delete()
    assert queue_state(writing, now=NOW).remaining_seconds is None


def test_a_worker_records_when_it_started_a_request(shop_campaign, tmp_path):
    request = request_copy(campaign=shop_campaign, language="en", n=2, enqueue=False)
    assert request.started_at is None
    with adengine_settings(COPYWRITER={"MODEL": str(tmp_path / "missing")}):
        done = run_request(str(request.pk))  # fails at once: the model is missing
    assert done.started_at is not None and done.finished_at >= done.started_at


def test_durations_in_words():
    assert duration(7) == "about 7 s" and duration(42) == "about 40 s" and duration(240) == "about 4 min"
    assert duration(3900) == "about 1 h 5 min"


def test_the_api_returns_the_place_in_line_and_the_estimate(shop_campaign, client):
    owner = get_user_model().objects.create_user("owner", password="pw")
    shop_campaign.advertiser.managers.add(owner)
    history(shop_campaign)
    make(shop_campaign, n=2, created=300)
    mine = make(shop_campaign, n=4, created=100)
    client.force_login(owner)
    data = client.get(f"/api/adengine/v1/generation-requests/{mine.pk}/").json()
    assert data["status"] == "queued" and data["started_at"] is None and data["created_at"]
    queue = data["queue"]
    assert (queue["queue"], queue["position"], queue["ahead"], queue["running"]) == ("adengine.interactive", 2, 1, 0)
    assert queue["remaining_seconds"] == pytest.approx((2 + 4) * 20, abs=1)
    assert queue["elapsed_seconds"] is None and "number 2 in line" in queue["message"]
    # a finished one: no place in line, no estimate
    done = GenerationRequest.objects.filter(status="done").first()
    data = client.get(f"/api/adengine/v1/generation-requests/{done.pk}/").json()
    assert data["queue"]["position"] is None and data["queue"]["remaining_seconds"] is None
    assert data["queue"]["message"] == "done"


def test_the_admin_shows_place_and_estimate_on_the_list_change_and_review_pages(shop_campaign, client):
    history(shop_campaign)
    make(shop_campaign, status="running", n=8, progress=4, created=600, started=40)
    queued = make(shop_campaign, n=2, created=100)
    client.force_login(get_user_model().objects.create_superuser("boss", "b@example.com", "pw"))
    listing = client.get("/admin/adengine/generationrequest/").content.decode()
    assert "writing: 4 of 8 variants" in listing and "next in line (1 being written)" in listing
    change = client.get(f"/admin/adengine/generationrequest/{queued.pk}/change/").content.decode()
    assert "next in line (1 being written); done in about " in change and "median of the last 3" in change
    review = client.get(f"/admin/adengine/campaign/{shop_campaign.pk}/review/").content.decode()
    assert "Copy being generated" in review and "writing: 4 of 8 variants" in review
    assert "next in line (1 being written)" in review


def test_the_api_message_stays_english_for_a_chinese_client(shop_campaign, client):
    owner = get_user_model().objects.create_user("owner", password="pw")
    shop_campaign.advertiser.managers.add(owner)
    mine = make(shop_campaign, n=4, created=100)
    client.force_login(owner)
    data = client.get(f"/api/adengine/v1/generation-requests/{mine.pk}/", HTTP_ACCEPT_LANGUAGE="zh-hans").json()
    assert data["queue"]["message"].startswith("next in line; no estimate yet")
