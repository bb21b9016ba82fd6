"""The schema tells the truth: schemathesis fuzzes every operation of the served OpenAPI schema, anonymously, as an
advertiser's manager and as staff, and every answer must be documented (status, content type, body).

Bounded for ``make test``: ``MAX_EXAMPLES`` per operation and role, on real rows (tests/factories.py), half the
requests naming real objects (a campaign, an asset, a product, a signed token...) so the success paths are fuzzed
too, not only the 404s. Checks: no server error, status code, content type, response schema and headers
conformance, schema-invalid requests rejected (negative data) and schema-valid requests accepted (below: a 400 on
valid data must name a rule the schema cannot state, listed in ``RULES``).
"""

from __future__ import annotations

import base64
import os
import re

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import Client
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis import checks

from adengine.models import GenerationRequest
from tests.factories import (
    AdvertiserFactory,
    CampaignFactory,
    CreativeFactory,
    PlacementFactory,
    ProductFactory,
    UserFactory,
)

MAX_EXAMPLES = int(os.environ.get("ADENGINE_FUZZ_EXAMPLES", "25"))  # more for a deeper run by hand
SCHEMA_URL = "/api/adengine/v1/schema/?format=json"

# Loaded once through the WSGI application, as a client would read it; requests go through the same application.
schema = schemathesis.openapi.from_wsgi(SCHEMA_URL, get_wsgi_application())
schema.config.generation.update(modes=["positive", "negative"], with_security_parameters=False)

FUZZ = settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
    checks.negative_data_rejection,
]

# A schema-valid request may still be refused (400) for a rule a JSON schema cannot state: an object that does not
# exist (or is not yours), a forged signature, a rule across fields, a time window. Each operation's rules, as the
# error keys that name them (``a.*.b``: key b of any item of list a); every other 400 on valid data fails the test.
RULES = {
    "GET /api/adengine/v1/decisions/": {"product"},
    "POST /api/adengine/v1/events/": {"events.*.product", "events.*.query", "events.*.occurred_at"},
    "POST /api/adengine/v1/impressions/": {"detail"},
    "GET /api/adengine/v1/why/{token}/": {"detail"},
    "GET /api/adengine/v1/campaigns/{campaign_id}/stats/": {"until"},
}
_CAMPAIGN_RULES = {
    "advertiser",
    "placements",
    "promoted_products.*",
    "tier",
    "ends_at",
    "daily_budget",
    "total_budget",
    "landing_url",
    "bid",
    "categories",
    "languages",
}
for _method in ("POST /api/adengine/v1/campaigns/", "PUT /api/adengine/v1/campaigns/{campaign_id}/"):
    RULES[_method] = _CAMPAIGN_RULES
RULES["PATCH /api/adengine/v1/campaigns/{campaign_id}/"] = _CAMPAIGN_RULES
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _basic(username: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:pw".encode()).decode()}


def _error_keys(errors, prefix: str = "") -> set[str]:
    """The paths of the fields a DRF error body names."""
    if isinstance(errors, dict):
        keys = set()
        for key, value in errors.items():
            path = f"{prefix}{'*' if str(key).isdigit() else key}"
            nested = _error_keys(value, path + ".")
            keys |= nested or {path}
        return keys
    if isinstance(errors, list) and any(isinstance(item, dict) for item in errors):
        return set().union(*(_error_keys(item, prefix + "*.") for item in errors if isinstance(item, dict)))
    return set()


def _has_control(value) -> bool:
    if isinstance(value, str):
        return bool(_CONTROL.search(value))
    if isinstance(value, dict):
        return any(_has_control(k) or _has_control(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_control(v) for v in value)
    return False


def _check_valid_data_accepted(case, response) -> None:
    """A schema-valid request is accepted, unless a rule of ``RULES`` or a control character refused it."""
    if case.meta is None or case.meta.generation.mode.is_negative or response.status_code not in (400, 422):
        return
    body = response.json()
    if _has_control([case.path_parameters, case.query, case.body, dict(case.headers or {})]):
        return  # control characters are refused everywhere (a 400 that says so), though the schema cannot say it
    named = _error_keys(body)
    allowed = RULES.get(f"{case.method.upper()} {case.path}", set())
    assert named and named <= allowed, (
        f"schema-valid request rejected: {case.method.upper()} {case.formatted_path} "
        f"query={case.query} body={case.body!r} -> {response.status_code} {body}"
    )


@pytest.fixture
def world(db):
    """Rows for every operation to reach its success path: two advertisers, a staff user, campaigns with copy, a
    copy request, placements, products, and a real impression with its signed tokens."""
    try:
        owner = UserFactory(username="owner")
        owner.set_password("pw")
        owner.save()
        admin = UserFactory(username="boss", is_staff=True, is_superuser=True)
        admin.set_password("pw")
        admin.save()
        mine, theirs = AdvertiserFactory(name="Mine"), AdvertiserFactory(name="Theirs")
        mine.managers.add(owner)
        placement = PlacementFactory(key="home-hero", max_ads=2)
        products = [ProductFactory(), ProductFactory()]
        campaign = CampaignFactory(advertiser=mine, products=[products[0]], keywords=["kettle"])
        campaign.placements.add(placement)
        other = CampaignFactory(advertiser=theirs, products=[products[1]], keywords=["teapot"])
        creatives = [CreativeFactory(campaign=campaign), CreativeFactory(campaign=other)]
        request = GenerationRequest.objects.create(campaign=campaign, language="en", n=2)
        decision = Client().get(
            "/api/adengine/v1/decisions/", {"placement": "home-hero", "session": "fuzz-session-0123456789"}
        )
        ad = decision.json()["ads"][0]
        # the WSGI handler closes "old" connections around each request; inside a test's transaction that would
        # drop it (Django's test client, used above, disconnects the same handlers for each of its requests)
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
        yield {
            "advertiser": mine.pk,
            "campaign": [campaign.pk, other.pk],
            "creative": [c.pk for c in creatives],
            "request": request.pk,
            "product": [str(p.pk) for p in products],
            "view_token": ad["view_url"].rsplit("/", 1)[1].removesuffix(".gif"),
            "why_token": ad["why_url"].rstrip("/").rsplit("/", 1)[1],
        }
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def _name_real_objects(case, data, world) -> None:
    """Half the valid requests name real rows (schemathesis judges a request by what it generated, so an invalid
    one is sent as generated)."""
    if case.meta is None or case.meta.generation.mode.is_negative:
        return
    if not data.draw(st.booleans(), label="real objects"):
        return
    path = case.path_parameters or {}
    for name, key in (("campaign_id", "campaign"), ("creative_id", "creative")):
        if isinstance(path.get(name), int):
            path[name] = data.draw(st.sampled_from(world[key]), label=name)
    if "request_id" in path:
        path["request_id"] = str(world["request"])
    if "token" in path:
        path["token"] = world["why_token"]
    query = case.query if isinstance(case.query, dict) else {}
    if "product" in query:
        query["product"] = world["product"][0]
    if "placement" in query:
        query["placement"] = "home-hero"
    if isinstance(query.get("campaign"), int):
        query["campaign"] = world["campaign"][0]
    body = case.body if isinstance(case.body, dict) else {}
    if isinstance(body.get("token"), str):
        body["token"] = world["view_token"]
    if isinstance(body.get("advertiser"), int):
        body["advertiser"] = world["advertiser"]
    if isinstance(body.get("campaign"), int):
        body["campaign"] = world["campaign"][0]
    if isinstance(body.get("placements"), list):
        body["placements"] = ["home-hero"]
    if isinstance(body.get("promoted_products"), list):
        body["promoted_products"] = world["product"][:1]
    for event in body.get("events", []) if isinstance(body.get("events"), list) else []:
        if isinstance(event, dict):  # what each kind needs, now (the window of occurred_at moves with the clock)
            event.pop("occurred_at", None)
            if event.get("kind") == "search":
                event["query"] = f"kettle {event.get('query', '')}"[:500]
            else:
                event["product"] = world["product"][0]


def _fuzz(case, data, world, headers=None) -> None:
    _name_real_objects(case, data, world)
    response = case.call_and_validate(headers=headers, checks=CHECKS)
    if os.environ.get("ADENGINE_FUZZ_TRACE"):  # a deeper run by hand: which answers each operation gave
        with open(os.environ["ADENGINE_FUZZ_TRACE"], "a") as trace:
            mode = case.meta.generation.mode.value if case.meta else "?"
            who = (headers or {}).get("Authorization", "anonymous")[-12:]
            trace.write(f"{who}\t{case.method} {case.path}\t{mode}\t{response.status_code}\n")
    _check_valid_data_accepted(case, response)


@schema.parametrize()
@schema.given(data=st.data())
@FUZZ
def test_anonymous(case, data, world):
    _fuzz(case, data, world)


@schema.parametrize()
@schema.given(data=st.data())
@FUZZ
def test_advertiser(case, data, world):
    _fuzz(case, data, world, _basic("owner"))


@schema.parametrize()
@schema.given(data=st.data())
@FUZZ
def test_staff(case, data, world):
    _fuzz(case, data, world, _basic("boss"))
