"""The marketer's copy review page (issue 14, item 6): every variant side by side by language, its rules in words,
its quality score, the facts behind its claims, and Approve / Reject that go through the review service."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.urls import reverse

from adengine.models import Creative, GenerationRequest
from adengine.services.creatives import add_human_asset
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def boss(client):
    user = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(user)
    return user


@pytest.fixture
def assets(campaign):
    """A person's grounded English description, a generated one with invented claims, a Chinese one, a headline."""

    def add(asset_type, language, text):
        return add_human_asset(campaign=campaign, asset_type=asset_type, language=language, text=text)

    found = {
        "grounded": add("description", "en", "Wireless earbuds with 30 hours of music."),
        "invented": add("description", "en", "Waterproof wireless earbuds, SPF 50."),
        "zh": add("description", "zh", "无线耳机续航30小时，通勤路上一直有音乐陪伴。"),
        "headline": add("headline", "en", "Music All Day Long"),
    }
    Creative.objects.filter(pk=found["invented"].pk).update(source=Creative.Source.GENERATED)
    for asset in found.values():
        asset.refresh_from_db()
    assert found["grounded"].passes_rules and found["zh"].passes_rules and found["headline"].passes_rules, [
        a.rejection_reasons for a in found.values()
    ]
    assert not found["invented"].passes_rules and found["invented"].status == "rejected"
    return found


def url(campaign):
    return reverse("admin:adengine_campaign_review", args=[campaign.pk])


def said(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_the_page_shows_each_language_side_by_side_with_rules_scores_and_evidence(campaign, assets, client, boss):
    # when the marketer opens the campaign's review page
    response = client.get(url(campaign))
    page = response.content.decode()
    assert response.status_code == 200
    # then English and Chinese are two columns, each variant in its own language's
    english, chinese = page.split("<h2>English</h2>")[1].split("<h2>中文</h2>")
    assert assets["grounded"].text in english and assets["zh"].text not in english
    assert assets["zh"].text in chinese and assets["grounded"].text not in chinese
    assert english.index("<h3>Headlines</h3>") < english.index("<h3>Descriptions</h3>")  # asset types apart
    # waiting-for-review before failing; the generated one is marked as such
    assert english.index(assets["grounded"].text) < english.index(assets["invented"].text)
    assert "generated · <strong>fails the rules</strong>" in english
    assert "a person&#x27;s · <strong>waiting for review</strong>" in english
    # the quality score rounded, the rules in words (a failed one first, with its reason)
    assert f"quality score {assets['grounded'].score:.2f}" in page and str(assets["grounded"].score) not in page
    assert "✓ length (display width) · not too short" in page
    assert "✗ every claim stated by the campaign&#x27;s facts — unsupported claim: 50, waterproof, spf" in page
    # the grounding evidence, claim by claim
    assert "30 hours — supported by product description: Wireless earbuds with 30 hours of battery life." in page
    assert "waterproof — not supported by the campaign's facts" in page
    assert "30小时 — supported by product description: 无线耳机，续航30小时。" in chinese
    # and the failing variant's Approve is disabled, saying why
    card = english.split(f'id="creative-{assets["invented"].pk}"')[1].split("</article>")[0]
    assert 'value="{}" class="button default" disabled'.format(assets["invented"].pk) in card
    assert "Approve: fails the rules: " in card
    assert "every claim stated by the campaign&#x27;s facts (unsupported claim: 50, waterproof, spf)" in card


def test_approve_approves_a_passing_variant_and_records_who(campaign, assets, client, boss):
    asset = assets["grounded"]
    # when its Approve button is pressed
    response = client.post(url(campaign), {"approve_one": asset.pk})
    # then it is approved by the marketer, and the page says so
    assert response.status_code == 302 and response["Location"] == url(campaign)
    asset.refresh_from_db()
    assert asset.status == "approved" and asset.reviewed_by == boss
    assert said(response) == ["Approved 1."]
    # and the others were left alone
    assert Creative.objects.filter(campaign=campaign, status="approved").count() == 1


def test_approving_a_failing_variant_is_refused_with_the_reason(campaign, assets, client, boss):
    asset = assets["invented"]
    # when Approve is sent for copy that fails the rules (its button is disabled, a crafted POST still arrives)
    response = client.post(url(campaign), {"approve_one": asset.pk})
    # then it stays rejected and unreviewed, and the message says why
    asset.refresh_from_db()
    assert asset.status == "rejected" and asset.reviewed_by is None
    (message,) = said(response)
    assert message.startswith(f"“{asset.text}” was not approved: it fails the rules: ")
    assert "every claim stated by the campaign's facts (unsupported claim: 50, waterproof, spf)" in message


def test_reject_rejects_and_records_who(campaign, assets, client, boss):
    asset = assets["zh"]
    response = client.post(url(campaign), {"reject_one": asset.pk})
    asset.refresh_from_db()
    assert asset.status == "rejected" and asset.reviewed_by == boss
    assert said(response) == ["Rejected 1."]


def test_bulk_approve_approves_the_selected_passing_ones_and_skips_the_failing(campaign, assets, client, boss):
    chosen = [assets[k].pk for k in ("grounded", "zh", "invented")]
    # when three are selected (one fails the rules) and "Approve selected" is pressed
    response = client.post(url(campaign), {"bulk": "approve", "selected": chosen})
    # then the two that pass are approved and the failing one is skipped, with a warning
    statuses = dict(Creative.objects.filter(pk__in=chosen).values_list("pk", "status"))
    assert [statuses[pk] for pk in chosen] == ["approved", "approved", "rejected"]
    first, warning = said(response)
    assert first == "Approved 2." and warning.startswith(f"“{assets['invented'].text}” was not approved")
    # and the headline nobody selected still waits
    assets["headline"].refresh_from_db()
    assert assets["headline"].status == "draft"


def test_bulk_without_a_selection_or_with_anothers_variant_changes_nothing(campaign, assets, client, boss):
    other = add_human_asset(
        campaign=type(campaign).objects.create(advertiser=campaign.advertiser, name="Other", keywords=["earbuds"]),
        asset_type="headline",
        language="en",
        text="Earbuds For Every Day",
    )
    for selected in ([], [other.pk], ["x"]):
        data = {"bulk": "approve", "selected": selected}
        response = client.post(url(campaign), data)
        assert response.status_code == 302 and "nothing changed" in said(response)[0]
    other.refresh_from_db()
    assert other.status == "draft"


def test_only_users_who_may_change_creatives_review(campaign, assets, client):
    # a staff member without the permission is refused
    clerk = UserFactory(is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_creative"))
    client.force_login(clerk)
    assert client.get(url(campaign)).status_code == 403
    assert client.post(url(campaign), {"approve_one": assets["grounded"].pk}).status_code == 403
    assets["grounded"].refresh_from_db()
    assert assets["grounded"].status == "draft"
    # one with it may
    reviewer = UserFactory(is_staff=True)
    reviewer.user_permissions.add(Permission.objects.get(codename="change_creative"))
    client.force_login(reviewer)
    assert client.get(url(campaign)).status_code == 200


def test_the_campaign_request_and_creative_pages_link_to_the_review(campaign, assets, client, boss):
    page = client.get(reverse("admin:adengine_campaign_change", args=[campaign.pk])).content.decode()
    assert f'<a href="{url(campaign)}">Review copy (3 waiting)</a>' in page
    request = GenerationRequest.objects.create(campaign=campaign, language="en", n=2)
    Creative.objects.filter(pk=assets["invented"].pk).update(request=request)
    page = client.get(reverse("admin:adengine_generationrequest_change", args=[request.pk])).content.decode()
    assert f'<a href="{url(campaign)}?request={request.pk}">Review these variants</a>' in page
    # the request's page shows only its variants
    page = client.get(f"{url(campaign)}?request={request.pk}").content.decode()
    assert assets["invented"].text in page and assets["grounded"].text not in page
    listing = client.get(reverse("admin:adengine_creative_changelist")).content.decode()
    assert f"{url(campaign)}#creative-{assets['zh'].pk}" in listing
