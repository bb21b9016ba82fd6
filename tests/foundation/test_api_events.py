"""POST /api/adengine/v1/events/: validation with clear 4xx messages."""

from __future__ import annotations

import pytest

from adengine.models import BehaviourEvent
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db
URL = "/api/adengine/v1/events/"


def test_records_a_batch(client):
    product = ProductFactory()
    resp = client.post(
        URL,
        {"events": [{"kind": "view", "product": str(product.pk)}, {"kind": "search", "query": "yoga mat"}]},
        content_type="application/json",
    )
    assert resp.status_code == 201, resp.content
    assert resp.json() == {"recorded": 2, "skipped": 0}
    assert sorted(BehaviourEvent.objects.values_list("kind", flat=True)) == ["search", "view"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"events": [{"kind": "teleport", "product": "1"}]}, "kind"),
        ({"events": [{"kind": "view"}]}, "product"),
        ({"events": [{"kind": "view", "product": "999999"}]}, "product"),
        ({"events": [{"kind": "view", "product": "not-a-number"}]}, "product"),
        ({"events": [{"kind": "search", "query": "  "}]}, "query"),
        ({"events": [{"kind": "purchase", "product": "1"}]}, "kind"),
        ({"events": []}, "events"),
        ({"events": [{"kind": "search", "query": "x", "occurred_at": "2001-01-01T00:00:00Z"}]}, "occurred_at"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(client, payload, field):
    resp = client.post(URL, payload, content_type="application/json")
    assert resp.status_code == 400
    assert field in resp.content.decode()
    assert not BehaviourEvent.objects.exists()


def test_malformed_json_is_a_400(client):
    resp = client.post(URL, "{not json", content_type="application/json")
    assert resp.status_code == 400


def test_openapi_schema_lists_the_endpoint(client):
    resp = client.get("/api/adengine/v1/schema/")
    assert resp.status_code == 200
    assert b"/api/adengine/v1/events/" in resp.content


def test_interactive_docs_are_served_without_a_cdn(client):
    page = client.get("/api/adengine/v1/docs/").content.decode()
    assert "swagger-ui" in page and "cdn.jsdelivr" not in page
