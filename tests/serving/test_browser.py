"""In a real browser: headless Chromium sees a sponsored ad on the storefront, clicks it, lands on the
product page, and the click shows in the campaign's statistics; a browser set to Chinese sees the ad in Chinese."""

from __future__ import annotations

import os
import shutil

import pytest

from adengine.selectors.performance import totals
from tests.factories import CreativeFactory, ProductFactory

# A desktop Chrome user agent: Chromium's own says "HeadlessChrome", which adengine counts as a bot.
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"


def _chromium(language: str = "en-GB"):
    """Headless Chromium whose user asks for pages in ``language`` (its Accept-Language header)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not (chromium and driver_path):
        pytest.fail("chromium and chromedriver are needed (make test installs Debian's chromium and chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1200,900",
                f"--user-agent={USER_AGENT}", f"--lang={language}"):  # fmt: skip
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"intl.accept_languages": language})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(60)
    return driver


@pytest.fixture
def browser():
    driver = _chromium()
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def chinese_browser():
    driver = _chromium("zh-CN,zh")
    try:
        yield driver
    finally:
        driver.quit()


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(os.environ.get("ADENGINE_SKIP_BROWSER") == "1", reason="ADENGINE_SKIP_BROWSER=1")
def test_shopper_sees_clicks_and_lands(browser, live_server, placement, make_campaign):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    # given a campaign promoting a product, with the home page's slot
    product = ProductFactory(title_en="Kestrel Trail 3")
    campaign = make_campaign(product=product)
    # when a shopper opens the storefront
    browser.get(live_server.url + "/")
    ad = WebDriverWait(browser, 30).until(ec.visibility_of_element_located((By.CSS_SELECTOR, ".adengine-ad")))
    # then a labelled sponsored ad is visible, with its "Why this ad?" link
    assert "sponsored" in ad.find_element(By.CSS_SELECTOR, ".adengine-label").text.casefold()
    assert ad.find_element(By.CSS_SELECTOR, ".adengine-why").is_displayed()
    # when they click it
    ad.find_element(By.CSS_SELECTOR, "a.adengine-link").click()
    WebDriverWait(browser, 30).until(ec.url_contains(product.get_absolute_url()))
    # then they are on the product page
    assert browser.find_element(By.TAG_NAME, "h1").text == "Kestrel Trail 3"
    # and the campaign's statistics count the view and the billed click
    stats = totals([campaign.pk])[campaign.pk].as_dict()
    assert stats["impressions"] == 1 and stats["clicks"] == 1 and stats["spend"] == 1.0
    assert stats["views"] == 1  # the beacon image was loaded by the browser


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(os.environ.get("ADENGINE_SKIP_BROWSER") == "1", reason="ADENGINE_SKIP_BROWSER=1")
def test_a_chinese_shopper_sees_the_ad_in_chinese_with_its_price_in_yuan(chinese_browser, live_server, placement,
                                                                          make_campaign):  # fmt: skip
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    # given a campaign with Chinese copy, promoting a product at 1,299 yuan
    product = ProductFactory(title_en="Kestrel trail shoe", title_zh="Kestrel 越野跑鞋", price="1299.00")
    campaign = make_campaign(product=product, headlines=0, languages=["en", "zh"])
    CreativeFactory(campaign=campaign, language="zh", text="越野跑，稳稳抓地")
    CreativeFactory(campaign=campaign, language="en", text="Grip for every trail")
    # when a shopper whose browser is set to Chinese opens the storefront
    chinese_browser.get(live_server.url + "/")
    ad = WebDriverWait(chinese_browser, 30).until(ec.visibility_of_element_located((By.CSS_SELECTOR, ".adengine-ad")))
    # then the ad is labelled "赞助" (sponsored), in Chinese, with its price in yuan
    label = ad.find_element(By.CSS_SELECTOR, ".adengine-label").text  # the label is set in capitals by its CSS
    assert label == f"赞助 · {campaign.advertiser.name.upper()}"
    assert ad.find_element(By.CSS_SELECTOR, ".adengine-headline").text == "越野跑，稳稳抓地"
    assert ad.find_element(By.CSS_SELECTOR, ".price").text == "¥1,299.00"
    why = ad.find_element(By.CSS_SELECTOR, ".adengine-why")
    assert why.text == "为什么看到这条广告？"
    # and "Why this ad?" opens in Chinese too
    why.click()
    WebDriverWait(chinese_browser, 30).until(ec.url_contains("/ads/why/"))
    assert chinese_browser.find_element(By.TAG_NAME, "h1").text == "为什么看到这条广告？"
    assert "关闭个性化广告" in chinese_browser.find_element(By.TAG_NAME, "body").text
