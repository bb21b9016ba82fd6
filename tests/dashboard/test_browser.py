"""In a real browser at 1280 px: the marketer logs in, opens the campaign dashboard, and reads that a campaign whose
copy only waits for review has no approved copy, with the link to review it; the table fits the window."""

from __future__ import annotations

import os

import pytest
from django.urls import reverse

from adengine.models import Creative
from tests.factories import CreativeFactory, UserFactory
from tests.serving.test_browser import browser  # noqa: F401  (the headless Chromium fixture)


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(os.environ.get("ADENGINE_SKIP_BROWSER") == "1", reason="ADENGINE_SKIP_BROWSER=1")
def test_the_dashboard_says_no_approved_copy(browser, live_server, healthy):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    # given a campaign with two variants waiting for review, one that delivers, and a marketer
    waiting = healthy(name="Autumn launch", headline=False)
    for n in range(2):
        CreativeFactory(campaign=waiting, status=Creative.Status.DRAFT, text=f"Autumn headline {n}")
    healthy(name="Evergreen")
    user = UserFactory(username="marketer", is_staff=True, is_superuser=True)
    user.set_password("pass-for-tests")
    user.save()
    browser.set_window_size(1280, 900)
    # when they log in and open the adengine admin, then its dashboard
    browser.get(live_server.url + reverse("admin:login"))
    browser.find_element(By.NAME, "username").send_keys("marketer")
    browser.find_element(By.NAME, "password").send_keys("pass-for-tests")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    WebDriverWait(browser, 30).until(ec.presence_of_element_located((By.ID, "user-tools")))
    browser.get(live_server.url + reverse("admin:app_list", args=["adengine"]))
    browser.find_element(By.LINK_TEXT, "Campaign dashboard").click()
    table = WebDriverWait(browser, 30).until(ec.visibility_of_element_located((By.ID, "campaign-dashboard")))
    # then the waiting campaign's diagnosis reads "no approved copy", its fix a link to the review page
    row = table.find_element(By.ID, f"campaign-{waiting.pk}")
    diagnosis = row.find_element(By.CSS_SELECTOR, "[data-reason=no_copy]")
    assert diagnosis.is_displayed()
    assert diagnosis.text == "✗ no approved copy: review 2 waiting variants"
    link = diagnosis.find_element(By.TAG_NAME, "a")
    assert link.get_attribute("href").endswith(reverse("admin:adengine_campaign_review", args=[waiting.pk]))
    # the delivering one says so, and the sparkline is drawn
    assert "✓ delivering" in table.text
    assert row.find_element(By.CSS_SELECTOR, "svg.sparkline").size["width"] > 0
    if os.environ.get("ADENGINE_SCREENSHOTS"):  # a folder: keep what the browser saw
        browser.save_screenshot(os.path.join(os.environ["ADENGINE_SCREENSHOTS"], "dashboard-test.png"))
    # and at 1280 px nothing runs off the right edge (the last column included)
    overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    right = browser.execute_script(
        "return document.querySelector('#campaign-dashboard th:last-child').getBoundingClientRect().right"
    )
    assert right <= 1280
    # following the fix opens the review page
    link.click()
    WebDriverWait(browser, 30).until(ec.url_contains(reverse("admin:adengine_campaign_review", args=[waiting.pk])))
    assert "Autumn headline 0" in browser.find_element(By.ID, "content").text
