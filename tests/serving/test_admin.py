"""The admin runs campaigns: delivery fields, results per campaign, placements and the serving log."""

from __future__ import annotations

import pytest
from django.urls import reverse

from adengine.models import Campaign
from adengine.serving import decide
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_admin_pages_render_with_results(admin_client, placement, make_campaign):
    campaign = make_campaign()
    decide(placement_key=placement.key, shopper=None)
    page = admin_client.get(reverse("admin:adengine_campaign_changelist")).content.decode()
    assert "1 · 0 · 0.00% · 0 · –" in page  # one impression, no clicks yet
    assert admin_client.get(reverse("admin:adengine_campaign_change", args=[campaign.pk])).status_code == 200
    for name in ("placement", "impression", "adevent", "conversion", "strategystate", "hourlystats", "dailystats"):
        assert admin_client.get(reverse(f"admin:adengine_{name}_changelist")).status_code == 200


def test_pause_action_stops_delivery(admin_client, placement, make_campaign):
    campaign = make_campaign()
    assert decide(placement_key=placement.key, shopper=None).ads
    admin_client.post(
        reverse("admin:adengine_campaign_changelist"), {"action": "pause", "_selected_action": [campaign.pk]}
    )
    assert Campaign.objects.get(pk=campaign.pk).status == "paused"
    assert decide(placement_key=placement.key, shopper=None).ads == []
