"""The campaign dashboard lists every campaign with its figures and diagnosis, filters by advertiser and status,
and saving an active campaign that cannot deliver warns (and saves)."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from adengine import clock
from adengine.models import Campaign, CampaignDay, Creative
from adengine.serving import decide
from tests.factories import AdvertiserFactory, CreativeFactory, UserFactory

pytestmark = pytest.mark.django_db

URL = "admin:adengine_dashboard"


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def row(page: str, campaign) -> str:
    return page.split(f'id="campaign-{campaign.pk}"')[1].split("</tr>")[0]


def test_the_dashboard_lists_campaigns_with_figures_and_diagnosis(admin_client, healthy, placement, monkeypatch):
    # (the diagnosis reads the time of day for pacing: late in the day, ¥12.50 of ¥50 is behind the plan, not ahead)
    import types

    from adengine.selectors import dashboard

    late = clock.midnight() + dt.timedelta(hours=23)
    monkeypatch.setattr(dashboard, "timezone", types.SimpleNamespace(now=lambda: late))
    # given a campaign that delivered (an impression and a view today) and one with only waiting copy
    running = healthy(name="Trail week", daily_budget=Decimal("50"))
    waiting = healthy(name="Quiet launch", headline=False)
    for n in range(3):
        CreativeFactory(campaign=waiting, status=Creative.Status.DRAFT, text=f"Waiting {n}")
    decision = decide(placement_key=placement.key, shopper=None)
    assert [ad.campaign_id for ad in decision.ads] == [running.pk]
    CampaignDay.objects.create(campaign=running, day=clock.today(), spent=Decimal("12.5"))
    # when the marketer opens the dashboard
    response = admin_client.get(reverse(URL))
    page = response.content.decode()
    assert response.status_code == 200
    # then each campaign has its figures: today's and its total impressions, spend against budgets, CTR, sparkline
    first = row(page, running)
    assert "Trail week" in first and "1 impressions" in first
    assert "¥12.50 of ¥50.00" in first and "¥0.00 of ¥100.00" in first
    assert "0.00%" in first  # CTR to two decimals of a percent
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="sparkline"' in first
    assert re.search(r"last 14 days \(oldest first\): (0, ){13}1", first)
    assert "✓ delivering" in first
    # and the one that cannot deliver says why, with the fix linked to its review page
    second = row(page, waiting)
    review = reverse("admin:adengine_campaign_review", args=[waiting.pk])
    assert f'✗ no approved copy: <a href="{review}">review 3 waiting variants</a>' in second
    assert "1 of the 2 shown cannot deliver now" in page


def test_ctr_and_roas_are_rounded(admin_client, healthy, placement):
    campaign = healthy()
    from adengine.services.strategy import add_to_rollup

    counts = {"impressions": 3000, "clicks": 37, "conversions": 2, "spend": Decimal("37"), "revenue": Decimal("92.5")}
    add_to_rollup({(clock.midnight(), campaign.pk, None, placement.pk, ""): counts})  # the hourly and daily roll-ups
    page = row(admin_client.get(reverse(URL)).content.decode(), campaign)
    assert "1.23%" in page and "2.50" in page and "3000 impressions" in page


def test_filters_by_advertiser_and_status(admin_client, healthy):
    acme, zenith = AdvertiserFactory(name="Acme"), AdvertiserFactory(name="Zenith")
    a_active = healthy(advertiser=acme, name="Acme running")
    a_paused = healthy(advertiser=acme, name="Acme paused", status=Campaign.Status.PAUSED)
    z_active = healthy(advertiser=zenith, name="Zenith running")

    def shown(**params) -> set[int]:
        page = admin_client.get(reverse(URL), params).content.decode()
        return {int(pk) for pk in re.findall(r'<tr id="campaign-(\d+)"', page)}

    assert shown() == {a_active.pk, a_paused.pk, z_active.pk}
    assert shown(advertiser=acme.pk) == {a_active.pk, a_paused.pk}
    assert shown(status="active") == {a_active.pk, z_active.pk}
    assert shown(advertiser=acme.pk, status="paused") == {a_paused.pk}


def test_bad_filters_are_said_and_ignored(admin_client, healthy):
    healthy()
    response = admin_client.get(reverse(URL), {"advertiser": "acme", "status": "running", "page": "x"})
    assert response.status_code == 200
    said = [str(m) for m in get_messages(response.wsgi_request)]
    assert "No advertiser 'acme'; showing every advertiser." in said
    assert "Status must be one of draft, active, paused, ended; showing every status." in said


def test_the_dashboard_reads_a_page_of_campaigns_in_a_fixed_number_of_queries(
    admin_client, healthy, django_assert_max_num_queries
):
    for _ in range(2):
        healthy(daily_budget=Decimal("5"), frequency_cap=2)
    with django_assert_max_num_queries(40) as few:
        admin_client.get(reverse(URL))
    for _ in range(8):
        healthy(daily_budget=Decimal("5"), frequency_cap=2)
    with django_assert_max_num_queries(len(few.captured_queries)):
        admin_client.get(reverse(URL))


def test_the_dashboard_is_linked_from_the_app_index_and_the_campaign_list(admin_client):
    url = reverse(URL)
    assert url in admin_client.get(reverse("admin:app_list", args=["adengine"])).content.decode()
    assert url in admin_client.get(reverse("admin:adengine_campaign_changelist")).content.decode()


def test_staff_without_campaign_permission_are_refused(client):
    client.force_login(UserFactory(is_staff=True))
    assert client.get(reverse(URL)).status_code == 403


def _form(campaign, **changes) -> dict:
    data = {
        "advertiser": campaign.advertiser_id, "name": campaign.name, "status": campaign.status, "tier": campaign.tier,
        "description": campaign.description, "keywords": ",".join(campaign.keywords), "categories": [],
        "promoted_products": [p.pk for p in campaign.promoted_products.all()],
        "languages": list(campaign.languages), "brand_voice": "", "objective": campaign.objective,
        "pricing": campaign.pricing, "bid": str(campaign.bid), "total_budget": str(campaign.total_budget),
        "daily_budget": "", "frequency_cap": "0", "landing_url": "", "starts_at_0": "", "starts_at_1": "",
        "ends_at_0": "", "ends_at_1": "", "starts_at": "", "ends_at": "", "audience_min_similarity": "",
    }  # fmt: skip
    data.update(changes)
    return data


def test_saving_an_active_campaign_without_approved_copy_warns_and_saves(admin_client, healthy):
    # given an active campaign whose only copy waits for review
    campaign = healthy(headline=False)
    CreativeFactory(campaign=campaign, status=Creative.Status.DRAFT)
    # when the marketer saves it with a new bid
    url = reverse("admin:adengine_campaign_change", args=[campaign.pk])
    response = admin_client.post(url, _form(campaign, bid="2.00"), follow=True)
    # then it is saved, with a warning that names the reason and links the fix
    assert Campaign.objects.get(pk=campaign.pk).bid == Decimal("2.00")
    warnings = [str(m) for m in get_messages(response.wsgi_request) if m.level_tag == "warning"]
    review = reverse("admin:adengine_campaign_review", args=[campaign.pk])
    assert warnings == [
        f"“{campaign.name}” is active but cannot deliver: no approved copy: "
        f'<a href="{review}">review 1 waiting variant</a>.'
    ]
    assert "is active but cannot deliver" in response.content.decode()


def test_saving_a_campaign_that_can_deliver_or_is_paused_does_not_warn(admin_client, healthy):
    fine, paused = healthy(), healthy(headline=False, status=Campaign.Status.PAUSED)
    for campaign in (fine, paused):
        url = reverse("admin:adengine_campaign_change", args=[campaign.pk])
        response = admin_client.post(url, _form(campaign), follow=True)
        assert response.status_code == 200
        assert not [m for m in get_messages(response.wsgi_request) if m.level_tag == "warning"]
        assert "was changed successfully" in response.content.decode()


def test_saving_an_active_campaign_into_an_inactive_placement_warns(admin_client, healthy):
    from tests.factories import PlacementFactory

    campaign = healthy()
    off = PlacementFactory(key="footer", is_active=False)
    url = reverse("admin:adengine_campaign_change", args=[campaign.pk])
    response = admin_client.post(url, _form(campaign, placements=[off.pk]), follow=True)
    warnings = [str(m) for m in get_messages(response.wsgi_request) if m.level_tag == "warning"]
    assert len(warnings) == 1 and "no eligible placement: its placements (footer) are inactive" in warnings[0]
    assert list(Campaign.objects.get(pk=campaign.pk).placements.all()) == [off]


def test_activating_campaigns_that_cannot_deliver_warns_for_each(admin_client, healthy):
    # given two paused campaigns, one without copy and one ready
    stuck = healthy(name="No copy yet", headline=False, status=Campaign.Status.PAUSED)
    ready = healthy(name="Ready", status=Campaign.Status.PAUSED)
    # when both are activated from the list
    response = admin_client.post(
        reverse("admin:adengine_campaign_changelist"),
        {"action": "activate", "_selected_action": [stuck.pk, ready.pk]},
        follow=True,
    )
    # then both are active, and the one that cannot deliver is named with its reason
    assert set(Campaign.objects.values_list("status", flat=True)) == {"active"}
    warnings = [str(m) for m in get_messages(response.wsgi_request) if m.level_tag == "warning"]
    assert len(warnings) == 1 and warnings[0].startswith("“No copy yet” is active but cannot deliver: no approved copy")
