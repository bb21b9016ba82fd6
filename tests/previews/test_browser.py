"""In a real browser at 1280 px: the marketer opens an asset waiting for review and sees it rendered in each of
its campaign's placements, marked as a preview; on the review page a card's preview opens on a click."""

from __future__ import annotations

import os

import pytest
from django.urls import reverse

from adengine.admin.previews import MARK
from adengine.models import Impression
from tests.creatives.test_browser_review import log_in
from tests.serving.test_browser import browser  # noqa: F401  (the headless Chromium fixture)


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(os.environ.get("ADENGINE_SKIP_BROWSER") == "1", reason="ADENGINE_SKIP_BROWSER=1")
def test_an_assets_preview_shows_the_rendered_slot(browser, live_server, copy):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    browser.set_window_size(1280, 900)
    log_in(browser, live_server)
    # when the marketer opens a Chinese headline that waits for review
    asset = copy["zh_headline"]
    browser.get(live_server.url + reverse("admin:adengine_creative_change", args=[asset.pk]))
    preview = WebDriverWait(browser, 30).until(ec.visibility_of_element_located((By.CSS_SELECTOR, ".adengine-preview")))
    # then it is marked as a preview, and shown in both placements as a Chinese shopper would see it
    assert preview.find_element(By.CSS_SELECTOR, ".adengine-preview-mark").text == MARK
    for key in ("home-hero", "search-top"):
        ad = preview.find_element(By.CSS_SELECTOR, f"aside[data-placement={key}] .adengine-ad")
        assert ad.is_displayed() and ad.size["width"] > 150 and ad.size["height"] > 30
        assert ad.find_element(By.CSS_SELECTOR, ".adengine-headline").text == "越野跑，稳稳抓地"
        assert ad.find_element(By.CSS_SELECTOR, ".adengine-label").text.startswith("赞助")
    card = preview.find_element(By.CSS_SELECTOR, "aside[data-placement=home-hero]")
    assert "¥1,299.00" in card.find_element(By.CSS_SELECTOR, ".price").text
    # nothing runs off the page at 1280 px
    assert browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth") <= 0

    # when they open the campaign's review page, its cards' previews are closed until clicked
    browser.get(live_server.url + reverse("admin:adengine_campaign_review", args=[asset.campaign_id]))
    card = WebDriverWait(browser, 30).until(ec.visibility_of_element_located((By.ID, f"creative-{asset.pk}")))
    slot = card.find_element(By.CSS_SELECTOR, "aside[data-placement=home-hero] .adengine-ad")
    assert not slot.is_displayed()
    card.find_element(By.CSS_SELECTOR, "details.review-preview summary").click()
    WebDriverWait(browser, 10).until(lambda _: slot.is_displayed())
    assert "越野跑，稳稳抓地" in slot.text
    # and no impression was logged by all this
    assert Impression.objects.count() == 0
