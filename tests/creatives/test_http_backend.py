"""The OpenAI-compatible backend against a local HTTP server speaking chat completions."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from adengine.ml.copywriter import CopywriterError, OpenAICopywriter
from adengine.models import Advertiser, Campaign, Creative
from adengine.services.creatives import request_copy, run_request
from tests.conftest import adengine_settings

HEADLINES = ["Music All Day Long", "Hear Every Beat", "Quiet Commute", "Pocket Concert"]
DESCRIPTIONS = [
    "Wireless earbuds with 30 hours of battery.",
    "Wireless earbuds that block the noise of the city.",
    "Light wireless earbuds for running and the gym.",
    "Wireless earbuds with deep bass in a tiny case.",
]


class ChatServer:
    """A tiny chat-completions server: answers with canned ad copy, or sleeps to time out."""

    def __init__(self, delay: float = 0.0, fail_first: int = 0, logprobs: list[float] | None = None) -> None:
        self.requests: list[dict] = []
        self.delay, self.fail_first, self.logprobs = delay, fail_first, logprobs
        self.cut_off = False
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), **body})
                if outer.fail_first > 0:
                    outer.fail_first -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                time.sleep(outer.delay)
                choices = [
                    {
                        "index": i,
                        "message": {
                            "role": "assistant",
                            "content": f" {HEADLINES[i % 4]}\nDescription: {DESCRIPTIONS[i % 4]}",
                        },
                    }
                    for i in range(body.get("n", 1))
                ]
                if outer.cut_off:  # the server stopped the last choice for its token limit
                    choices[-1]["finish_reason"] = "length"
                if outer.logprobs and body.get("logprobs"):  # as OpenAI's API: one entry per token
                    for i, choice in enumerate(choices):
                        value = outer.logprobs[i % len(outer.logprobs)]
                        choice["logprobs"] = {"content": [{"token": "t", "logprob": value}] * 5}
                payload = json.dumps({"choices": choices, "usage": {"completion_tokens": 20 * len(choices)}}).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except BrokenPipeError:
                    pass  # the client timed out and went away, as the timeout tests intend

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture
def server():
    s = ChatServer()
    yield s
    s.close()


def test_protocol(server):
    writer = OpenAICopywriter(base_url=server.url, api_key="k", model="m", timeout=5, retries=0)
    out = writer.complete("Headline:", n=3, max_new_tokens=20, temperature=0.7, top_p=0.9, seed=5)
    assert [c.text.splitlines()[0].strip() for c in out] == HEADLINES[:3]
    req = server.requests[0]
    assert req["path"] == "/v1/chat/completions" and req["auth"] == "Bearer k"
    assert req["n"] == 3 and req["seed"] == 5 and req["model"] == "m" and req["messages"][-1]["content"] == "Headline:"


def test_retries_then_succeeds():
    s = ChatServer(fail_first=1)
    try:
        writer = OpenAICopywriter(base_url=s.url, api_key="", model="m", timeout=5, retries=2)
        assert len(writer.complete("x", n=1, max_new_tokens=5, temperature=1, top_p=1, seed=0)) == 1
        assert len(s.requests) == 2
    finally:
        s.close()


def test_timeout_is_a_clear_error():
    s = ChatServer(delay=2.0)
    try:
        writer = OpenAICopywriter(base_url=s.url, api_key="", model="m", timeout=0.3, retries=1)
        with pytest.raises(CopywriterError, match="failed after 2 attempt"):
            writer.complete("x", n=1, max_new_tokens=5, temperature=1, top_p=1, seed=0)
    finally:
        s.close()


@pytest.mark.django_db
def test_studio_with_the_http_backend(server, encoder):
    campaign = Campaign.objects.create(
        advertiser=Advertiser.objects.create(name="Sonica"),
        name="Earbuds",
        keywords=["wireless earbuds"],
        languages=["en"],
    )
    cfg = {"COPYWRITER": {"BACKEND": "openai", "BASE_URL": server.url, "MODEL": "m", "BATCH_SIZE": 4}}
    with adengine_settings(**cfg):
        request = run_request(str(request_copy(campaign=campaign, language="en", n=4, enqueue=False).pk))
    assert request.status == "done" and request.model_name == "openai:m"
    assert Creative.objects.filter(request=request, asset_type="headline", passes_rules=True).count() == 4


@pytest.mark.django_db
def test_a_timing_out_server_fails_the_request_with_its_reason(encoder):
    s = ChatServer(delay=2.0)
    campaign = Campaign.objects.create(advertiser=Advertiser.objects.create(name="A"), name="C", keywords=["tea"])
    try:
        cfg = {"COPYWRITER": {"BACKEND": "openai", "BASE_URL": s.url, "MODEL": "m", "TIMEOUT": 0.3, "RETRIES": 0}}
        with adengine_settings(**cfg):
            request = run_request(str(request_copy(campaign=campaign, language="en", n=2, enqueue=False).pk))
    finally:
        s.close()
    assert request.status == "failed" and "failed after 1 attempt" in request.error
    assert not Creative.objects.exists()


def _earbud_copy_from(server: ChatServer):
    """Four variants of an earbuds campaign's copy written by ``server`` (closed afterwards): the request."""
    campaign = Campaign.objects.create(
        advertiser=Advertiser.objects.create(name="Sonica"), name="Earbuds", keywords=["wireless earbuds"]
    )
    try:
        cfg = {"COPYWRITER": {"BACKEND": "openai", "BASE_URL": server.url, "MODEL": "m", "BATCH_SIZE": 4}}
        with adengine_settings(**cfg):
            return run_request(str(request_copy(campaign=campaign, language="en", n=4, enqueue=False).pk))
    finally:
        server.close()


@pytest.mark.django_db
def test_the_fluency_rule_reads_the_servers_token_likelihoods(encoder):
    # a server that says how likely each completion was: the fourth is far less likely than its siblings
    s = ChatServer(logprobs=[-0.6, -0.7, -0.65, -4.5])
    request = _earbud_copy_from(s)
    assert s.requests[0]["logprobs"] is True
    headlines = {c.text: c for c in Creative.objects.filter(request=request, asset_type="headline")}
    unlikely = headlines[HEADLINES[3]]
    assert not unlikely.passes_rules and any("fluency" in r and "unlikely" in r for r in unlikely.rejection_reasons)
    assert all(c.passes_rules for text, c in headlines.items() if text != HEADLINES[3])
    assert request.stats["rejections"].get("fluency", 0) >= 1


@pytest.mark.django_db
def test_copy_cut_off_by_the_token_limit_is_rejected(encoder):
    s = ChatServer()
    s.cut_off = True
    request = _earbud_copy_from(s)
    cut = Creative.objects.get(request=request, asset_type="description", text=DESCRIPTIONS[3])
    assert not cut.passes_rules and any("truncated" in r for r in cut.rejection_reasons)
    # its headline was finished; the other choices stopped on their own
    assert Creative.objects.get(request=request, asset_type="headline", text=HEADLINES[3]).passes_rules
    assert request.stats["rejections"].get("truncated") == 1


@pytest.mark.django_db
def test_a_finished_request_keeps_what_others_wrote_while_it_ran(server, encoder):
    # given a request whose worker records heartbeats, and the sweeper counting a message queued meanwhile
    from django.db.models import F
    from django.utils import timezone

    from adengine.models import GenerationRequest

    campaign = Campaign.objects.create(
        advertiser=Advertiser.objects.create(name="Sonica"), name="Earbuds", keywords=["wireless earbuds"]
    )
    request = request_copy(campaign=campaign, language="en", n=4, enqueue=False)
    beats = []

    def meanwhile(done):
        beat = timezone.now()
        beats.append(beat)
        GenerationRequest.objects.filter(pk=request.pk).update(heartbeat_at=beat, queued=F("queued") + 1)

    cfg = {"COPYWRITER": {"BACKEND": "openai", "BASE_URL": server.url, "MODEL": "m", "BATCH_SIZE": 2}}
    with adengine_settings(**cfg):
        done = run_request(str(request.pk), progress=meanwhile)
    # then finishing it writes its own fields only: the last heartbeat and the count of messages stay
    done.refresh_from_db()
    assert done.status == "done" and beats
    assert done.heartbeat_at == beats[-1] > done.started_at
    assert done.queued == request.queued + len(beats)
