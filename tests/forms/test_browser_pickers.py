"""In a real browser: an editor creates a campaign with the pickers -- a product found by typing its name (shown
with its image), a category picked by name, keywords typed with a Chinese comma."""

from __future__ import annotations

import os

import pytest

from adengine.models import Campaign
from tests.factories import AdvertiserFactory, CategoryFactory, ProductFactory, UserFactory
from tests.serving.test_browser import browser  # noqa: F401  (the headless Chromium fixture)


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(os.environ.get("ADENGINE_SKIP_BROWSER") == "1", reason="ADENGINE_SKIP_BROWSER=1")
def test_creating_a_campaign_with_the_pickers(browser, live_server):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 30)
    # given a shop with a product, a category and an advertiser, and an editor signed in
    shoe = ProductFactory(title_en="Kestrel Trail 3", title_zh="隼越野跑鞋", brand="Kestrel", image_url="/img/k.svg")
    ProductFactory(title_en="Pour-over kettle")
    CategoryFactory(slug="running-shoes", name_en="Running Shoes", name_zh="跑鞋")
    AdvertiserFactory(name="Kestrel")
    user = UserFactory(username="editor", is_staff=True, is_superuser=True)
    user.set_password("pw-for-the-browser")
    user.save()
    browser.get(live_server.url + "/admin/login/?next=/admin/adengine/campaign/add/")
    browser.find_element(By.NAME, "username").send_keys("editor")
    browser.find_element(By.NAME, "password").send_keys("pw-for-the-browser", Keys.ENTER)
    wait.until(ec.presence_of_element_located((By.NAME, "name")))

    def pick(field: str, typed: str, expected: str):
        """Open the field's select2, type, and choose the offered option that reads ``expected``."""
        container = browser.find_element(By.CSS_SELECTOR, f"select[name={field}] + .select2-container")
        container.click()
        search = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, ".select2-container--open input")))
        search.send_keys(typed)
        return pick_offered(expected)

    def pick_offered(expected: str):
        xpath = f"//li[contains(@class, 'select2-results__option') and contains(., '{expected}')]"
        return wait.until(ec.element_to_be_clickable((By.XPATH, xpath)))

    # when the editor fills the form, picking by name
    pick("advertiser", "Kest", "Kestrel").click()
    browser.find_element(By.NAME, "name").send_keys("Trail season")
    pick("promoted_products", "kestrel tr", "Kestrel Trail 3 / 隼越野跑鞋 · Kestrel")
    # (once the whole term is searched, only the shoe is offered: "k" alone also matched the kettle)
    wait.until(lambda d: "Pour-over" not in d.find_element(By.CSS_SELECTOR, ".select2-results").text)
    option = pick_offered("Kestrel Trail 3 / 隼越野跑鞋 · Kestrel")
    # (with its image)
    assert option.find_element(By.TAG_NAME, "img").get_attribute("src").endswith("/img/k.svg")
    option.click()
    pick("categories", "跑鞋", "Running Shoes / 跑鞋").click()
    browser.find_element(By.NAME, "keywords").send_keys("跑步，trail、越野")
    browser.find_element(By.NAME, "_save").click()
    wait.until(ec.url_matches(r"/admin/adengine/campaign/$"))
    # then the campaign is saved with the picked product and category, and each keyword
    campaign = Campaign.objects.get(name="Trail season")
    assert list(campaign.promoted_products.all()) == [shoe]
    assert campaign.categories == ["running-shoes"]
    assert campaign.keywords == ["跑步", "trail", "越野"]
