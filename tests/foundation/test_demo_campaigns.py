"""The demo agrees with itself: advertisers promote their own brands, a campaign's theme names the products it
promotes (no "healthy snacks" ad for cat food), its copy passes the rules, and the suggested demo login is a
shopper whose interests match a running campaign."""

from __future__ import annotations

import csv
import datetime as dt
import json
import random
from collections import Counter
from pathlib import Path

import pytest
from django.core.management import call_command

from adengine.models import Campaign, Creative
from fixtures.demo_data import CATALOG, PRODUCT_FIELDS, build_catalog, generate
from fixtures.demo_login import CAMPAIGNS, PASSWORD, demo_login

ROOT = Path(__file__).resolve().parents[2]
SPECS = json.loads(CAMPAIGNS.read_text(encoding="utf-8"))["campaigns"]
SPONSORED = [s for s in SPECS if s.get("tier", "sponsored") == "sponsored"]
PRODUCTS = {p.product_id: p for p in build_catalog(random.Random(7))}


def _type(product) -> str:
    """The product's type in English, as a campaign would name it ("sunscreen SPF50" -> "sunscreen")."""
    words = CATALOG[product.category][4][product.ptype][0].lower().split()
    return " ".join(words[:-1] if any(ch.isdigit() for ch in words[-1]) else words)


@pytest.mark.parametrize("spec", SPONSORED, ids=lambda s: s["name"])
def test_advertisers_promote_their_own_brands_only(spec):
    assert spec["promoted_products"], "a sponsored demo campaign promotes products"
    for sku in spec["promoted_products"]:
        assert sku in PRODUCTS, f"{sku} is not in the demo catalog"
        assert PRODUCTS[sku].row["brand"] == spec["advertiser"], f"{spec['advertiser']} promotes {sku}"


@pytest.mark.parametrize("spec", SPONSORED, ids=lambda s: s["name"])
def test_a_campaigns_theme_names_what_it_promotes_and_nothing_else_of_its_category(spec):
    en = spec["assets"]["en"]
    theme = " ".join([spec["description"], *spec["keywords"]]).lower()
    copy = " ".join([*en["headlines"], *en["descriptions"]]).lower()
    promoted = {_type(PRODUCTS[sku]) for sku in spec["promoted_products"]}
    # every promoted product's type is named by the description or keywords
    for ptype in promoted:
        assert ptype in theme, f"{spec['name']!r} promotes a {ptype} but its theme does not say so"
    # no other type of the category is promised (as "healthy snacks" promised what the campaign did not promote)
    for product in PRODUCTS.values():
        ptype = _type(product)
        if product.row["category"] in spec["categories"] and ptype not in promoted:
            assert ptype not in theme and ptype not in copy, f"{spec['name']!r} promises a {ptype}"
    assert spec["categories"] == sorted({PRODUCTS[s].row["category"] for s in spec["promoted_products"]})


@pytest.mark.slow  # the rules' relevance check loads the encoder (about a minute on 2 shared cores)
@pytest.mark.django_db
def test_the_demo_campaigns_load_against_the_demo_catalog_with_their_copy_approved(tmp_path, capsys):
    # given the demo catalog in the shop
    path = tmp_path / "products.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=PRODUCT_FIELDS)
        writer.writeheader()
        writer.writerows(p.row for p in PRODUCTS.values())
    call_command("shop_import", "--no-progress", products=str(path))
    # when the demo campaigns are loaded
    call_command("adengine_load_campaigns", str(CAMPAIGNS), "--no-targets")
    # then every written headline and description passes the rules, and each campaign shows its own brand
    assert "fails the rules" not in capsys.readouterr().err
    written = sum(len(v) for s in SPECS for lang in s["assets"].values() for v in lang.values())
    assert Creative.objects.filter(status=Creative.Status.APPROVED).count() == written
    for campaign in Campaign.objects.filter(tier=Campaign.Tier.SPONSORED).select_related("advertiser"):
        assert {p.brand for p in campaign.promoted_products.all()} == {campaign.advertiser.name}


def test_the_suggested_demo_login_is_a_shopper_a_campaign_targets(tmp_path):
    login = demo_login()
    spec = next(s for s in SPONSORED if s["name"] == login.campaign)
    assert spec["status"] == "active" and spec["categories"] == [login.category]
    # in the data `make demo` generates (any day: the choice is made from the seed's latent interests), the shopper
    # looks at the campaign's category more than at any other, and at what it promotes
    paths = generate(tmp_path, end=dt.datetime(2026, 11, 1, 15, tzinfo=dt.UTC))
    with paths["events"].open(encoding="utf-8") as fh:
        mine = [e for e in csv.DictReader(fh) if e["customer_id"] == login.username and e["product_id"]]
    viewed = [PRODUCTS[e["product_id"]] for e in mine]
    by_category = Counter(p.row["category"] for p in viewed)
    assert by_category.most_common(1)[0][0] == login.category
    assert by_category[login.category] >= 0.3 * sum(by_category.values())
    promoted = {_type(PRODUCTS[sku]) for sku in spec["promoted_products"]}
    assert sum(_type(p) in promoted for p in viewed) >= 10
    with paths["customers"].open(encoding="utf-8") as fh:
        row = next(r for r in csv.DictReader(fh) if r["customer_id"] == login.username)
    assert row["personalisation"] == "1"  # they consent: their interests pick their ads
    # and the README suggests that login
    assert f"`{login.username}` / `{PASSWORD}`" in (ROOT / "README.md").read_text(encoding="utf-8")
