"""Realistic data for the documentation's screenshots: the demo catalog and campaigns, generated-looking copy
variants (judged by the real rules), and two weeks of traffic written as the log is and rolled up by the real
strategy update (today's last hours left in the live tail)."""

from __future__ import annotations

import csv
import datetime as dt
import random
import uuid
from decimal import Decimal
from pathlib import Path

from django.core.management import call_command
from django.utils import timezone

from adengine.models import AdEvent, Campaign, Conversion, Creative, GenerationRequest, Impression, Placement, Shopper
from adengine.services.budgets import charge
from adengine.services.campaigns import refresh_targets, set_status
from adengine.services.creatives import add_human_asset
from adengine.services.strategy import update_strategy
from fixtures.demo_data import PRODUCT_FIELDS, build_catalog
from fixtures.demo_login import CAMPAIGNS

DAYS = 14
REVIEWED = "Trail season"  # the campaign whose review page is shown
REPORTED = "Dinner for happy cats"  # the campaign whose report is shown: cat food, bought often and cheap
# what a copywriter might have written for it: some pass the rules, some do not (the rules decide, not this list)
VARIANTS = {
    "en": {
        "headline": ["Trail shoes that grip wet rock", "Run rocky paths with confidence", "The best trail shoe ever",
                     "Off-road miles, sure footing"],
        "description": ["Kestrel trail running shoes with grippy soles for wet, rocky paths.",
                        "Waterproof trail shoes with a lifetime warranty, call 400-800-1234."],
    },
    "zh": {
        "headline": ["湿滑山路，也能稳稳抓地", "越野跑鞋，陪你跑每一段山路", "史上最好的越野跑鞋"],
        "description": ["Kestrel 越野跑鞋，防滑大底，雨天的岩石山路也安心。"],
    },
}  # fmt: skip


def load_demo(tmp_path: Path) -> None:
    """The demo catalog (seed 7) and the demo campaigns with their written copy, targets computed."""
    path = tmp_path / "products.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=PRODUCT_FIELDS)
        writer.writeheader()
        writer.writerows(p.row for p in build_catalog(random.Random(7)))
    call_command("shop_import", "--no-progress", products=str(path))
    call_command("adengine_load_campaigns", str(CAMPAIGNS), "--no-targets")
    refresh_targets()
    start = timezone.now() - dt.timedelta(days=DAYS + 2)
    Campaign.objects.update(starts_at=start)
    Campaign.objects.filter(name__in=["Trail season", "Light layers"]).update(ends_at=start + dt.timedelta(days=30))


def add_variants() -> None:
    """Generated-looking variants of the reviewed campaign, in English and Chinese, waiting or failing."""
    campaign = Campaign.objects.get(name=REVIEWED)
    for language, kinds in VARIANTS.items():
        request = GenerationRequest.objects.create(
            campaign=campaign, language=language, n=8, status=GenerationRequest.Status.DONE, progress=8,
            model_name="gemma3-270m (fine-tuned)", finished_at=timezone.now(),
        )  # fmt: skip
        for asset_type, texts in kinds.items():
            for text in texts:
                made = add_human_asset(campaign=campaign, asset_type=asset_type, language=language, text=text)
                Creative.objects.filter(pk=made.pk).update(
                    source=Creative.Source.GENERATED, request=request, model_name=request.model_name
                )


def traffic(*, seed: int = 15) -> None:
    """Two weeks of impressions, views, clicks and conversions for the delivering campaigns, rolled up."""
    rng = random.Random(seed)
    now = timezone.now()
    shoppers = Shopper.objects.bulk_create([Shopper(anonymous_key=f"screenshot-{n}") for n in range(600)])
    placements = list(Placement.objects.all())
    stuck = {"Sound on the go", "Plush friends"}  # no approved copy / paused: no traffic today
    for campaign in Campaign.objects.exclude(name__in=stuck).prefetch_related("promoted_products"):
        headlines = list(Creative.objects.filter(campaign=campaign, asset_type="headline", status="approved"))
        products = list(campaign.promoted_products.all())
        if not headlines:
            continue
        ctr, cvr = rng.uniform(0.012, 0.035), rng.uniform(0.02, 0.06)
        if campaign.name == REPORTED:
            cvr = 0.15
        daily = rng.randint(250, 600)  # within every demo campaign's daily and total budget
        for back in range(DAYS - 1, -1, -1):
            day = (now - dt.timedelta(days=back)).replace(hour=0, minute=0, second=0, microsecond=0)
            hours = 24 if back else max(now.hour, 1)
            n = int(daily * rng.uniform(0.7, 1.25) * hours / 24)
            _day(rng, campaign, day, hours, n, ctr, cvr, headlines, products, shoppers, placements)
    update_strategy(now=now, lag_seconds=2 * 3600)  # the roll-up, leaving the last two hours live


def _day(rng, campaign, day, hours, n, ctr, cvr, headlines, products, shoppers, placements) -> None:
    unit = campaign.bid if campaign.pricing == Campaign.Pricing.CPC else campaign.bid / 1000
    impressions = []
    for _ in range(n):
        headline, product = rng.choice(headlines), rng.choice(products) if products else None
        served = day + dt.timedelta(seconds=rng.uniform(0, hours * 3600 - 60))
        impressions.append(Impression(
            decision_id=uuid.uuid4(), placement=rng.choice(placements), campaign=campaign, creative=headline,
            product=product, shopper=rng.choice(shoppers), language=headline.language, position=0, propensity=0.5,
            predicted_ctr=ctr, relevance=rng.uniform(0.5, 1.0), value=float(unit) * ctr, candidates=4,
            personalised=rng.random() < 0.6, policy="screenshots", landing_url=product.get_absolute_url() if product
            else "/", served_at=served,
        ))  # fmt: skip
    Impression.objects.bulk_create(impressions)
    events, conversions, spent = [], [], Decimal(0)
    for imp in impressions:
        later = imp.served_at + dt.timedelta(seconds=rng.uniform(1, 50))
        if rng.random() < 0.72:
            cost = unit if campaign.pricing == Campaign.Pricing.CPM else Decimal(0)
            events.append(AdEvent(impression=imp, impression_served_at=imp.served_at, campaign=campaign, kind="view",
                                  status="accepted", charge=cost, occurred_at=later))  # fmt: skip
            spent += cost
            if rng.random() < ctr / 0.72:
                cost = unit if campaign.pricing == Campaign.Pricing.CPC else Decimal(0)
                events.append(AdEvent(impression=imp, impression_served_at=imp.served_at, campaign=campaign,
                                      kind="click", status="accepted", charge=cost,
                                      occurred_at=later + dt.timedelta(seconds=2)))  # fmt: skip
                spent += cost
                if imp.product is not None and rng.random() < cvr:
                    conversions.append((imp, later + dt.timedelta(minutes=rng.uniform(3, 90))))
    AdEvent.objects.bulk_create(events)
    clicks = {e.impression_id: e for e in events if e.kind == "click"}
    Conversion.objects.bulk_create([
        Conversion(order_key=f"SCR-{uuid.uuid4().hex[:12]}", campaign=campaign, impression=imp, click=clicks[imp.pk],
                   shopper=imp.shopper, revenue=imp.product.price, ordered_at=at)
        for imp, at in conversions if at < timezone.now()
    ])  # fmt: skip
    charge(campaign_id=campaign.pk, amount=spent, day=day.date())


def stuck_campaigns() -> None:
    """A campaign whose copy only waits for review, and a paused one, so the dashboard diagnoses something."""
    Creative.objects.filter(campaign__name="Sound on the go").update(status=Creative.Status.DRAFT)
    set_status(campaigns=Campaign.objects.filter(name="Plush friends"), status=Campaign.Status.PAUSED)
