"""Reports, exports, the dashboard and the advertiser API's statistics read from a replica (REPORTS_DATABASE),
and nothing else does: serving and every write stay on the default database.

The test settings declare ``replica`` as a mirror of the default database (as Django's docs do for replicas in
tests) and install ``adengine.routers.ReportsRouter``; each test sees which connection ran which query.
"""

from __future__ import annotations

import re

import pytest
from django.core.checks import run_checks
from django.db import connections
from django.test.utils import CaptureQueriesContext, override_settings
from django.urls import reverse

from adengine.models import Campaign
from adengine.routers import read_alias, reports
from adengine.serving import decide
from tests.conftest import adengine_settings
from tests.factories import CreativeFactory, UserFactory
from tests.strategy.test_update import log_traffic

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "replica"])
LOG = re.compile(r"adengine_(impression|adevent|hourlystats|dailystats)")


@pytest.fixture
def traffic(placement, make_campaign):
    campaign = make_campaign(headlines=0)
    log_traffic(CreativeFactory(campaign=campaign), placement, served=20, clicks=2)
    return campaign


def split_queries(fn):
    """Run ``fn``; the SQL each connection ran that read the log or its roll-up."""
    with CaptureQueriesContext(connections["default"]) as default, CaptureQueriesContext(connections["replica"]) as rep:
        result = fn()
    pick = lambda ctx: [q["sql"] for q in ctx.captured_queries if LOG.search(q["sql"])]  # noqa: E731
    return result, pick(default), pick(rep)


@pytest.mark.parametrize("what", ["report", "export", "dashboard"])
def test_the_marketers_reads_go_to_the_replica(client, traffic, what):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    url = {
        "report": reverse("admin:adengine_campaign_report", args=[traffic.pk]),
        "export": reverse("admin:adengine_campaign_report", args=[traffic.pk]) + "?export=csv",
        "dashboard": reverse("admin:adengine_dashboard"),
    }[what]
    with adengine_settings(REPORTS_DATABASE="replica"):
        resp, on_default, on_replica = split_queries(lambda: client.get(url))
    assert resp.status_code == 200
    assert on_replica, "the page read nothing from the replica"
    assert not on_default, on_default
    # and with no replica configured, the same page reads the default database
    resp, on_default, on_replica = split_queries(lambda: client.get(url))
    assert resp.status_code == 200 and on_default and not on_replica


def test_the_advertiser_apis_statistics_read_the_replica(client, traffic):
    manager = UserFactory()
    traffic.advertiser.managers.add(manager)
    client.force_login(manager)
    url = f"/api/adengine/v1/campaigns/{traffic.pk}/stats/"
    with adengine_settings(REPORTS_DATABASE="replica"):
        resp, on_default, on_replica = split_queries(lambda: client.get(url))
    assert resp.status_code == 200, resp.content
    assert resp.json()["totals"]["impressions"] == 20
    assert on_replica and not on_default


def test_serving_and_writes_stay_on_the_default_database(placement, make_campaign):
    make_campaign()
    with adengine_settings(REPORTS_DATABASE="replica"):
        assert read_alias() == "default"
        _, on_default, on_replica = split_queries(lambda: decide(placement_key=placement.key, shopper=None))
        assert on_default and not on_replica  # the impression insert, outside any report
        with reports():
            assert read_alias() == "replica"
            assert Campaign.objects.all().db == "replica"
            campaign = Campaign.objects.first()
            campaign.name = "renamed inside a report"
            with CaptureQueriesContext(connections["default"]) as default:
                campaign.save(update_fields=["name"])
            assert any("UPDATE" in q["sql"] for q in default.captured_queries)


def test_checks_name_a_missing_replica_a_missing_router_and_bad_counters():
    def ids():
        return {m.id for m in run_checks() if m.id.startswith("adengine.")}

    with adengine_settings(REPORTS_DATABASE="nowhere"):
        assert "adengine.E014" in ids()
    with adengine_settings(REPORTS_DATABASE="replica"), override_settings(DATABASE_ROUTERS=[]):
        assert "adengine.W014" in ids()
    with adengine_settings(SHARED_COUNTERS="memcached://x"):
        assert "adengine.E015" in ids()
    with adengine_settings(REPORTS_DATABASE="replica", SHARED_COUNTERS="redis://localhost:6379/2"):
        assert not ids() & {"adengine.E014", "adengine.W014", "adengine.E015"}
