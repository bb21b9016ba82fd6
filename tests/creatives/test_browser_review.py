"""In a real browser at 1280 px: the marketer opens a campaign's copy review page, clicks Approve on a variant that
passes the rules, and sees the success message and the variant approved (a failing one cannot be approved)."""

from __future__ import annotations

import os

import pytest
from django.urls import reverse

from adengine.models import Creative
from tests.factories import CampaignFactory, CreativeFactory, UserFactory
from tests.serving.test_browser import browser  # noqa: F401  (the headless Chromium fixture)


def log_in(browser, live_server, username: str = "marketer") -> None:  # noqa: F811
    """Make a superuser and log in as them through the admin's login form."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    user = UserFactory(username=username, is_staff=True, is_superuser=True)
    user.set_password("pass-for-tests")
    user.save()
    browser.get(live_server.url + reverse("admin:login"))
    browser.find_element(By.NAME, "username").send_keys(username)
    browser.find_element(By.NAME, "password").send_keys("pass-for-tests")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    WebDriverWait(browser, 30).until(ec.presence_of_element_located((By.ID, "user-tools")))


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(os.environ.get("ADENGINE_SKIP_BROWSER") == "1", reason="ADENGINE_SKIP_BROWSER=1")
def test_approving_a_variant_from_the_review_page(browser, live_server):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    # given a campaign with a variant waiting for review and one that fails the rules
    campaign = CampaignFactory(name="Trail season", languages=["en", "zh"])
    waiting = CreativeFactory(campaign=campaign, text="Grip for every trail", status=Creative.Status.DRAFT)
    failing = CreativeFactory(
        campaign=campaign,
        text="The best shoe ever made",
        status=Creative.Status.REJECTED,
        passes_rules=False,
        rule_results=[{"rule": "absolute_claims", "passed": False, "reason": "“best”"}],
    )
    browser.set_window_size(1280, 900)
    log_in(browser, live_server)
    # when the marketer opens the campaign's review page
    browser.get(live_server.url + reverse("admin:adengine_campaign_review", args=[campaign.pk]))
    card = WebDriverWait(browser, 30).until(ec.visibility_of_element_located((By.ID, f"creative-{waiting.pk}")))
    assert "waiting for review" in card.text
    # the failing variant's Approve is disabled, with the reason
    blocked = browser.find_element(By.CSS_SELECTOR, f"#creative-{failing.pk} button[name=approve_one]")
    assert not blocked.is_enabled() and "no absolute or superlative claims" in blocked.get_attribute("title")
    # and clicks Approve on the waiting one
    card.find_element(By.CSS_SELECTOR, "button[name=approve_one]").click()
    # then the page says so, and the card shows it approved by them, its Approve now disabled
    message = WebDriverWait(browser, 30).until(ec.visibility_of_element_located((By.CSS_SELECTOR, ".messagelist")))
    assert "Approved 1." in message.text
    card = browser.find_element(By.ID, f"creative-{waiting.pk}")
    assert "approved" in card.get_attribute("class").split()
    assert "approved (by marketer)" in card.text
    assert not card.find_element(By.CSS_SELECTOR, "button[name=approve_one]").is_enabled()
    assert browser.find_element(By.CSS_SELECTOR, "#content p").text.startswith("0 waiting for review")
    # and it is stored: approved, by them; the failing one untouched
    waiting.refresh_from_db()
    failing.refresh_from_db()
    assert waiting.status == Creative.Status.APPROVED and waiting.reviewed_by.username == "marketer"
    assert failing.status == Creative.Status.REJECTED
