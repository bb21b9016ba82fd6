"""adengine in a shop shaped like the big open-source Django shops: variants, several categories per product,
order statuses with cancellations and refunds, an AJAX cart with its own signal, a currency per price. Nothing
here is written for adengine except the adapter, and the host sets no DRF schema class."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.checks import run_checks
from django.test import Client
from django.utils import timezone

from adengine.models import Advertiser, BehaviourEvent, Campaign, Conversion, Creative, Placement
from adengine.selectors.performance import totals
from adengine.services.strategy import update_strategy

from .models import Category, Order, OrderLine, Product, ProductVariant

pytestmark = pytest.mark.django_db
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"


@pytest.fixture
def shop():
    road, trail = Category.objects.create(slug="road", name="Road"), Category.objects.create(slug="trail", name="Trail")
    shoe = Product.objects.create(name="Kestrel Trail 3", description="A trail running shoe.")
    shoe.categories.set([road, trail])
    small = ProductVariant.objects.create(
        product=shoe, sku="KT3-42", price_amount=Decimal("129.00"), quantity_available=2
    )
    large = ProductVariant.objects.create(
        product=shoe, sku="KT3-44", price_amount=Decimal("119.00"), quantity_available=0
    )
    Placement.objects.create(key="product-side", name="Product side", format="product", max_ads=1)
    campaign = Campaign.objects.create(
        advertiser=Advertiser.objects.create(name="Kestrel"), name="Trail season", status="active", languages=["en"],
        bid=Decimal("0.50"), total_budget=Decimal("100"), categories=["trail"],
    )  # fmt: skip
    campaign.promoted_products.set([shoe])
    Creative.objects.create(
        campaign=campaign, asset_type="headline", language="en", text="Run the hills", status="approved",
        passes_rules=True, score=0.5,
    )  # fmt: skip
    return {"shoe": shoe, "small": small, "large": large, "campaign": campaign, "road": road, "trail": trail}


def test_the_adapter_maps_this_shop_and_its_api_schema_works_without_a_schema_class(shop):
    browser = Client(headers={"User-Agent": BROWSER})
    order = Order.objects.create(number="N1", created=timezone.now())
    OrderLine.objects.create(order=order, variant=shop["small"], quantity=1, unit_price_gross=Decimal("129.00"))
    assert not [e for e in run_checks() if e.id.startswith("adengine.")]
    assert browser.get("/api/adengine/v1/schema/").status_code == 200


def test_an_ad_for_a_product_in_two_categories_fits_either_category_page_and_shows_its_price(shop):
    browser = Client(headers={"User-Agent": BROWSER})
    # the campaign targets "trail"; the shoe is filed under road too, and its product page is relevant to it
    page = browser.get(f"/categories/{shop['trail'].slug}/").content.decode()
    assert "Run the hills" in page and "€119.00" in page  # the lowest variant price, in the variant's currency
    api = browser.get("/api/adengine/v1/decisions/", {"placement": "product-side", "product": "KT3-42"})
    (ad,) = api.json()["ads"]
    assert ad["product"]["id"] == str(shop["shoe"].pk) and ad["product"]["price_text"] == "€119.00"
    assert ad["product"]["currency"] == "EUR"


def test_apps_name_products_by_a_variants_sku_and_a_sku_that_is_anothers_id_is_ambiguous(shop):
    browser = Client(headers={"User-Agent": BROWSER})
    for named in ("KT3-44", str(shop["shoe"].pk)):
        resp = browser.get("/api/adengine/v1/decisions/", {"placement": "product-side", "product": named})
        (ad,) = resp.json()["ads"]
        assert ad["product"]["product_id"] == str(shop["shoe"].pk) and ad["product"]["product_key"] == "KT3-42"
    # a sock whose variant's SKU is the shoe's id
    sock = Product.objects.create(name="Trail sock")
    ProductVariant.objects.create(product=sock, sku=str(shop["shoe"].pk), price_amount=Decimal("9.00"))
    resp = browser.get("/api/adengine/v1/decisions/", {"placement": "product-side", "product": str(shop["shoe"].pk)})
    assert resp.status_code == 400 and "ambiguous" in resp.json()["product"], resp.content
    assert f"'KT3-42' for id {shop['shoe'].pk}" in resp.json()["product"]


def test_the_ajax_cart_is_heard_through_the_shops_own_signal(shop):
    browser = Client(headers={"User-Agent": BROWSER})
    assert browser.post("/cart/add/KT3-42/").json() == {"ok": True}
    event = BehaviourEvent.objects.get()
    assert event.kind == "cart" and event.product_id == shop["shoe"].pk and event.source == "signal"


def test_a_sold_out_product_is_not_advertised(shop):
    browser = Client(headers={"User-Agent": BROWSER})
    assert "Run the hills" in browser.get(f"/products/{shop['shoe'].pk}/").content.decode()
    # when the last variant in stock sells out (the shop saves the product after a sale, as shops do)
    ProductVariant.objects.filter(pk=shop["small"].pk).update(quantity_available=0)
    shop["shoe"].save()
    # then its ad is not shown any more
    page = browser.get(f"/products/{shop['shoe'].pk}/").content.decode()
    assert "€" not in page


def test_an_order_credited_to_a_click_is_taken_back_when_cancelled(shop, django_capture_on_commit_callbacks):
    user = get_user_model().objects.create(username="runner")
    browser = Client(headers={"User-Agent": BROWSER})
    browser.force_login(user)
    page = browser.get(f"/products/{shop['shoe'].pk}/").content.decode()
    click = page.split('class="adengine-link" href="')[1].split('"')[0]
    assert browser.get(click).status_code == 302
    with django_capture_on_commit_callbacks(execute=True):
        order = Order.objects.create(number=f"N-{uuid.uuid4().hex[:6]}", user=user, created=timezone.now())
        OrderLine.objects.create(order=order, variant=shop["small"], quantity=1, unit_price_gross=Decimal("129.00"))
        order.save()
    campaign = shop["campaign"]
    assert totals([campaign.pk])[campaign.pk].revenue == Decimal("129.00")
    update_strategy(lag_seconds=0)
    with django_capture_on_commit_callbacks(execute=True):
        order.status = Order.Status.CANCELED
        order.save()
    assert Conversion.objects.get().reversed_at is not None
    figures = totals([campaign.pk])[campaign.pk]
    assert (figures.conversions, figures.revenue, figures.clicks) == (0, Decimal(0), 1)
