"""The documentation's screenshots at 1280 px, from realistic data (the demo catalog and campaigns, generated-looking
copy judged by the real rules, two weeks of traffic rolled up by the real strategy update).

Regenerate them with ``ADENGINE_SCREENSHOTS=docs python -m pytest tests/screenshots --ds=tests.settings``: it
writes ``dashboard.png``, ``review.png`` and ``report.png`` into that folder (skipped when the variable is unset).
Chinese text needs a CJK font for Chromium (Debian: ``apt-get install fonts-noto-cjk``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.urls import reverse

from adengine.models import Campaign
from tests.creatives.test_browser_review import log_in
from tests.serving.test_browser import browser  # noqa: F401  (the headless Chromium fixture)

from . import demo

WIDTH = 1280
OUT = os.environ.get("ADENGINE_SCREENSHOTS", "")

pytestmark = pytest.mark.skipif(not OUT, reason="set ADENGINE_SCREENSHOTS to a folder to write the screenshots")


def shoot(browser, url: str, path: Path, *, ready: str, script: str = "", max_height: int = 1600) -> None:  # noqa: F811
    """Open ``url`` at 1280 px wide and save the page (up to ``max_height`` px tall) once ``ready`` is visible
    (and ``script`` has run)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    metrics = {"width": WIDTH, "height": 900, "deviceScaleFactor": 1, "mobile": False}
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    browser.get(url)
    WebDriverWait(browser, 30).until(ec.visibility_of_element_located((By.CSS_SELECTOR, ready)))
    if script:
        browser.execute_script(script)
    height = min(browser.execute_script("return document.documentElement.scrollHeight"), max_height)
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {**metrics, "height": height})
    assert browser.execute_script("return document.documentElement.scrollWidth") <= WIDTH, f"{url} overflows"
    browser.save_screenshot(str(path))


@pytest.mark.django_db(transaction=True)
def test_screenshots(browser, live_server, encoder, tmp_path):  # noqa: F811
    # the demo shop's campaigns with two weeks behind them, one campaign's fresh variants waiting for review
    demo.load_demo(tmp_path)
    demo.add_variants()
    demo.stuck_campaigns()
    demo.traffic()
    out = Path(OUT)
    out.mkdir(parents=True, exist_ok=True)
    log_in(browser, live_server)
    reviewed, reported = (Campaign.objects.get(name=name) for name in (demo.REVIEWED, demo.REPORTED))
    shoot(browser, live_server.url + reverse("admin:adengine_dashboard"), out / "dashboard.png",
          ready="#campaign-dashboard")  # fmt: skip
    shoot(browser, live_server.url + reverse("admin:adengine_campaign_review", args=[reviewed.pk]),
          out / "review.png", ready=".review-columns", max_height=1800,
          script="document.querySelector('section[lang=zh] details.review-preview').open = true")  # fmt: skip
    shoot(browser, live_server.url + reverse("admin:adengine_campaign_report", args=[reported.pk]) + "?days=14",
          out / "report.png", ready="svg")  # fmt: skip
    for name in ("dashboard", "review", "report"):
        assert (out / f"{name}.png").stat().st_size > 20_000
