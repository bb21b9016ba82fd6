"""Ad previews (issue 15, item 2): an asset, before approval, rendered by the storefront's own slot template in each
of its campaign's placements and in its language, with the best approved-or-waiting partner copy; marked as a
preview; nothing logged, counted or signed; only for those allowed to see the copy."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from adengine.admin.previews import MARK
from adengine.models import Creative, Impression, Placement, Shopper
from adengine.serving.log import impression_log
from tests.factories import CreativeFactory, PlacementFactory, UserFactory

from .conftest import WAITING

pytestmark = pytest.mark.django_db


def asides(html: str) -> dict[str, str]:
    """The preview's slots by placement key (only previews carry data-decision="preview")."""
    pattern = r'<aside class="adengine-slot[^"]*" data-placement="([^"]+)" data-decision="preview".*?</aside>'
    return {m.group(1): m.group(0) for m in re.finditer(pattern, html, re.S)}


def language_sections(html: str) -> dict[str, str]:
    """The preview's ads by language."""
    return dict(re.findall(r'<section class="adengine-preview-ad" data-language="([^"]+)">(.*?)</section>', html, re.S))


def creative_page(client, creative: Creative) -> str:
    response = client.get(reverse("admin:adengine_creative_change", args=[creative.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_a_waiting_headline_is_shown_in_each_placement_with_the_best_description(client, boss, copy, product):
    # when the marketer opens a headline that still waits for review
    html = creative_page(client, copy["draft"])
    # then it is marked as a preview and shown in both placements by the storefront's slot template
    assert MARK in html
    slots = asides(html)
    assert set(slots) == {"home-hero", "search-top"}
    assert 'class="adengine-slot adengine-product"' in slots["home-hero"]
    assert 'class="adengine-slot adengine-text"' in slots["search-top"]
    for slot in slots.values():
        # its text escaped, with the campaign's best approved description (approved before waiting, whatever the
        # score; never a rejected or failing one), labelled as sponsored by its advertiser
        assert "&lt;b&gt;Grip&lt;/b&gt; &amp; go" in slot
        assert "Trail shoes with grippy soles." in slot
        assert "Waiting description." not in slot and "Rejected" not in slot and "Failing" not in slot
        assert "Sponsored · Kestrel" in slot and "Why this ad?" in slot
    assert "<b>Grip</b>" not in html
    # the product card shows the promoted product with its price in the shop's currency; the text ad does not
    assert "Kestrel trail shoe" in slots["home-hero"] and "¥1,299.00" in slots["home-hero"]
    assert "¥" not in slots["search-top"] and '<img class="adengine-img"' not in slots["search-top"]
    # the waiting headline is said to wait
    assert "the headline waits for review" in html


def test_a_preview_logs_nothing_and_signs_no_url(client, boss, copy, product):
    # when the marketer opens the asset's page, the campaign's page and its review page
    pages = [
        creative_page(client, copy["draft"]),
        client.get(reverse("admin:adengine_campaign_change", args=[copy["draft"].campaign_id])).content.decode(),
        client.get(reverse("admin:adengine_campaign_review", args=[copy["draft"].campaign_id])).content.decode(),
    ]
    tracking = reverse("adengine:click", args=["T"]).split("/c/")[0]  # "/ads": view, click and "Why this ad?" URLs
    for html in pages:
        slots = asides(html)
        assert slots
        for slot in slots.values():
            # then no preview links to a tracking URL: the ad goes straight to the landing page, the beacon is inert
            assert tracking + "/" not in slot
            assert f'<a class="adengine-link" href="{product.get_absolute_url()}"' in slot
            assert 'class="adengine-pixel" src="data:image/gif;base64,' in slot
    # and nothing was logged or counted, now or when the log writer flushes
    assert impression_log.flush() == 0
    assert Impression.objects.count() == 0 and Shopper.objects.count() == 0
    assert Creative.objects.filter(served__gt=0).count() == 0


def test_a_chinese_asset_is_shown_in_chinese(client, boss, copy):
    # when the marketer opens the Chinese headline (waiting for review)
    html = creative_page(client, copy["zh_headline"])
    # then the slot is the Chinese shopper's: 赞助, the Chinese "Why this ad?", the product's Chinese title, the price
    slots = asides(html)
    for slot in slots.values():
        assert "赞助 · Kestrel" in slot and 'aria-label="赞助"' in slot and "为什么看到这条广告？" in slot
        assert "越野跑，稳稳抓地" in slot and "越野跑鞋，防滑大底。" in slot
        assert "Sponsored" not in slot and 'lang="zh"' in slot
    assert "Kestrel 越野跑鞋" in slots["home-hero"] and "¥1,299.00" in slots["home-hero"]
    # and the admin around it stays in English
    assert "Save and continue editing" in html


def test_a_description_is_shown_with_the_best_headline(client, boss, copy):
    # when the marketer opens a description waiting for review
    html = creative_page(client, copy["waiting_description"])
    # then it is shown under the best approved headline (approved before a waiting one with a higher score)
    for slot in asides(html).values():
        assert "Waiting description." in slot and "Grip for every trail" in slot and "&lt;b&gt;Grip" not in slot


def test_a_failing_asset_can_still_be_previewed(client, boss, copy):
    html = creative_page(client, copy["failing"])
    assert all("Failing description." in slot for slot in asides(html).values())
    assert "the description fails the rules" in html


def test_the_campaign_page_shows_its_best_ad_per_language_and_placement(client, boss, copy, campaign):
    # when the marketer opens the campaign
    html = client.get(reverse("admin:adengine_campaign_change", args=[campaign.pk])).content.decode()
    # then its best ad is shown per language (approved copy before waiting copy), in both placements
    assert 'id="ad-preview"' in html and MARK in html
    sections = language_sections(html)
    assert set(sections) == {"en", "zh"}
    en, zh = asides(sections["en"]), asides(sections["zh"])
    assert set(en) == set(zh) == {"home-hero", "search-top"}
    assert all("Grip for every trail" in s and "Trail shoes with grippy soles." in s for s in en.values())
    assert all("越野跑，稳稳抓地" in s and "赞助" in s for s in zh.values())


def test_a_campaign_without_headlines_says_so(client, boss, campaign):
    html = client.get(reverse("admin:adengine_campaign_change", args=[campaign.pk])).content.decode()
    assert "No headline to preview yet" in html and not asides(html)


def test_without_chosen_placements_the_active_ones_are_shown(client, boss, copy, campaign):
    # given a campaign that chose no placement (serving shows it in every active one), and an inactive placement
    campaign.placements.clear()
    PlacementFactory(key="old-banner", is_active=False)
    # then its preview is in the active placements only
    assert set(asides(creative_page(client, copy["headline"]))) == {"home-hero", "search-top"}


def test_an_out_of_stock_product_is_not_shown(client, boss, copy, product, campaign):
    # given the promoted product is sold out (serving never advertises it) and the campaign has its own landing page
    product.stock = 0
    product.save()
    campaign.landing_url = "/sale/"
    campaign.save()
    slot = asides(creative_page(client, copy["headline"]))["home-hero"]
    assert "Kestrel trail shoe" not in slot and "¥" not in slot
    assert '<a class="adengine-link" href="/sale/"' in slot


def test_the_review_page_previews_every_card_in_a_fixed_number_of_queries(client, boss, copy, campaign):
    url = reverse("admin:adengine_campaign_review", args=[campaign.pk])

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(url)
        assert response.status_code == 200
        return len(ctx.captured_queries)

    # when the marketer opens the review page
    html = client.get(url).content.decode()
    # then every card has a preview toggle with the variant in both placements
    assert html.count('<details class="review-preview">') == len(copy)
    assert len(re.findall(r'data-decision="preview"', html)) == 2 * len(copy)
    # and more variants cost no more queries
    before = queries()
    for n in range(6):
        CreativeFactory(campaign=campaign, text=f"More headline {n}", **WAITING)
    assert queries() == before


@pytest.mark.parametrize("path", ["creative", "review", "campaign"])
def test_previews_need_permission(client, copy, campaign, path):
    # given a staff member without adengine's permissions
    user = UserFactory(is_staff=True)
    client.force_login(user)
    url = {
        "creative": reverse("admin:adengine_creative_change", args=[copy["draft"].pk]),
        "review": reverse("admin:adengine_campaign_review", args=[campaign.pk]),
        "campaign": reverse("admin:adengine_campaign_change", args=[campaign.pk]),
    }[path]
    # then no page shows them a preview
    response = client.get(url)
    assert response.status_code in (302, 403)
    assert MARK not in response.content.decode()


def test_a_viewer_of_creatives_sees_the_preview(client, copy):
    # given a staff member who may only view creative assets
    user = UserFactory(is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_creative"))
    client.force_login(user)
    # then the asset's page shows its preview, read-only
    html = creative_page(client, copy["draft"])
    assert MARK in html and set(asides(html)) == {"home-hero", "search-top"}
    assert Placement.objects.count() == 2
