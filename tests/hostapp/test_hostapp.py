"""adengine attached to a shop it was not written for: UUID keys, other names, its own adapter."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from adengine.adapters import get_adapter
from adengine.models import BehaviourEvent, ProductVector

from .models import Item, Purchase, PurchaseItem, Section

pytestmark = pytest.mark.django_db


@pytest.fixture
def item():
    section = Section.objects.create(code="tea", label="Tea")
    return Item.objects.create(
        name="Oolong tea",
        blurb="Roasted oolong from Fujian.",
        maker="Hill Co",
        section=section,
        cost_cents=4500,
        on_hand=3,
    )


def _column_type(table: str, column: str) -> str:
    with connection.cursor() as cur:
        cur.execute(
            "SELECT data_type FROM information_schema.columns WHERE table_name = %s AND column_name = %s",
            [table, column],
        )
        return cur.fetchone()[0]


def test_adengine_migrations_follow_the_host_product_model():
    # adengine's product foreign keys are UUID columns here, bigint in the demo shop
    assert _column_type("adengine_behaviourevent", "product_id") == "uuid"
    assert _column_type("adengine_productvector", "product_id") == "uuid"
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def test_the_adapter_describes_products(item):
    adapter = get_adapter()
    text = adapter.product_text(item)
    assert "Oolong tea" in text and "Hill Co" in text and "Tea" in text and "Fujian" in text
    assert adapter.product_price(item) == 45 and adapter.product_url(item) == f"/items/{item.pk}/"


def test_template_tag_records_a_view_of_a_uuid_product(client, item):
    resp = client.get(f"/items/{item.pk}/")
    assert resp.status_code == 200
    assert BehaviourEvent.objects.get().product_id == item.pk


def test_api_accepts_uuid_product_ids(client, item):
    resp = client.post(
        "/api/adengine/v1/events/",
        {"events": [{"kind": "cart", "product": str(item.pk)}]},
        content_type="application/json",
    )
    assert resp.status_code == 201
    bad = client.post(
        "/api/adengine/v1/events/",
        {"events": [{"kind": "cart", "product": str(uuid.uuid4())}]},
        content_type="application/json",
    )
    assert bad.status_code == 400


def test_apps_name_items_by_the_article_number_the_settings_name(client, item):
    """This shop's own key is "article_number" (ADENGINE["PRODUCT_KEY_FIELD"]): the API takes it or the UUID, and
    answers both."""
    from decimal import Decimal

    from adengine.models import Advertiser, Campaign, Creative, Placement

    item.article_number = "OOL-7"
    item.save()
    Placement.objects.create(key="item-side", name="Item page", format="product", max_ads=1)
    campaign = Campaign.objects.create(
        advertiser=Advertiser.objects.create(name="Hill Co"), name="Oolong", status="active", bid=Decimal("0.40")
    )
    campaign.promoted_products.set([item])
    Creative.objects.create(
        campaign=campaign, asset_type="headline", language="en", text="Roasted oolong", status="approved",
        passes_rules=True,
    )  # fmt: skip
    for named in ("OOL-7", str(item.pk)):
        resp = client.get(
            "/api/adengine/v1/decisions/",
            {"placement": "item-side", "product": named},
            HTTP_USER_AGENT="Mozilla/5.0 Firefox/133.0",
        )
        assert resp.status_code == 200, resp.content
        (ad,) = resp.json()["ads"]
        assert ad["product"]["product_id"] == str(item.pk) and ad["product"]["product_key"] == "OOL-7"
        assert ad["product"]["url"] == f"http://testserver/items/{item.pk}/"
    event = client.post(
        "/api/adengine/v1/events/",
        {"events": [{"kind": "view", "product": "OOL-7"}]},
        content_type="application/json",
    )
    assert event.status_code == 201 and BehaviourEvent.objects.get().product_id == item.pk
    unknown = client.get("/api/adengine/v1/decisions/", {"placement": "item-side", "product": "OOL-8"})
    assert unknown.json() == {"product": "no product with article number or id 'OOL-8'."}


def test_order_signal_uses_the_host_adapter(item, django_capture_on_commit_callbacks):
    buyer = get_user_model().objects.create(username="buyer")
    with django_capture_on_commit_callbacks(execute=True):
        purchase = Purchase.objects.create(buyer=buyer, made_on=timezone.now())
        PurchaseItem.objects.create(purchase=purchase, item=item, count=2, each_cents=4500)
        purchase.save()
    event = BehaviourEvent.objects.get(kind="purchase")
    assert event.product_id == item.pk and event.quantity == 2 and event.revenue == 90
    assert event.shopper.user == buyer


def test_voided_orders_do_not_count(item, django_capture_on_commit_callbacks):
    buyer = get_user_model().objects.create(username="buyer2")
    with django_capture_on_commit_callbacks(execute=True):
        purchase = Purchase.objects.create(buyer=buyer, made_on=timezone.now(), voided=True)
        PurchaseItem.objects.create(purchase=purchase, item=item, count=1, each_cents=4500)
        purchase.save()
    assert not BehaviourEvent.objects.exists()


def test_product_import_not_supported_is_a_clear_error(tmp_path):
    f = tmp_path / "products.csv"
    f.write_text("product_id,category,title_en,title_zh,price\nX1,tea,Tea,茶,1.00\n", encoding="utf-8")
    with pytest.raises(CommandError, match="manages its catalog itself"):
        call_command("shop_import", "--no-progress", products=str(f))


def test_events_and_orders_import_through_the_host_adapter(tmp_path, item, capsys):
    """This host imports orders one at a time (its own import_order) and has no session_id or query columns."""
    # given a customer, their view of the host's UUID item and two orders, one naming no item of the shop
    now = (timezone.now() - timezone.timedelta(hours=1)).replace(microsecond=0).isoformat()
    files = {
        "customers": "customer_id,personalisation\nbuyer,1\n",
        "events": f"event_id,customer_id,kind,product_id,occurred_at\ne1,buyer,view,{item.pk},{now}\n",
        "orders": (
            "order_id,customer_id,placed_at,product_id,quantity,unit_price\n"
            f"o1,buyer,{now},{item.pk},2,45.00\no2,buyer,{now},P-1,1,1.00\n"
        ),
    }
    for name, text in files.items():
        (tmp_path / f"{name}.csv").write_text(text, encoding="utf-8")
    paths = {name: str(tmp_path / f"{name}.csv") for name in files}
    # when they are imported
    with pytest.raises(CommandError, match="1 bad row"):
        call_command("shop_import", "--no-progress", **paths)
    # then the good order is the host's purchase with its item, and a purchase event; the bad one is named
    purchase = Purchase.objects.get()
    assert purchase.buyer.username == "buyer" and list(purchase.items.values_list("count", "each_cents")) == [(2, 4500)]
    assert BehaviourEvent.objects.get(kind="purchase").revenue == 90
    assert BehaviourEvent.objects.get(kind="view").product_id == item.pk
    assert "orders.csv:3: product_id 'P-1' is not in products.csv or the shop; order 'o2' skipped whole" in (
        capsys.readouterr().err
    )
    # when they are imported again, then nothing changes
    with pytest.raises(CommandError, match="1 bad row"):
        call_command("shop_import", "--no-progress", **paths)
    assert "orders: 0 loaded, 1 unchanged" in capsys.readouterr().out
    assert Purchase.objects.count() == 1 and BehaviourEvent.objects.count() == 2


def test_product_vectors_key_on_uuid(item, encoder):
    from adengine.services.products import embed_products

    assert embed_products(encoder=encoder) == 1
    assert ProductVector.objects.get().product_id == item.pk


def test_ads_serve_track_and_attribute_on_uuid_products(client, item, django_capture_on_commit_callbacks):
    """The serving path on this host: a slot on its item page, a click to its URL, an order credited."""
    from decimal import Decimal

    from adengine.models import Advertiser, Campaign, Conversion, Creative, Impression, Placement
    from adengine.services.shoppers import get_or_create_for_user

    Placement.objects.create(key="item-side", name="Item page", format="product", max_ads=1)
    campaign = Campaign.objects.create(
        advertiser=Advertiser.objects.create(name="Hill Co"), name="Oolong", status="active", bid=Decimal("0.40")
    )
    campaign.promoted_products.set([item])
    Creative.objects.create(
        campaign=campaign, asset_type="headline", language="en", text="Roasted oolong", status="approved",
        passes_rules=True,
    )  # fmt: skip
    user = get_user_model().objects.create_user("hostbuyer", password="pw-123456")
    get_or_create_for_user(user=user)
    client.force_login(user)
    # the host's page shows the ad (the item page is context: the campaign promotes this item)
    html = client.get(f"/items/{item.pk}/", HTTP_USER_AGENT="Mozilla/5.0 Firefox/133.0").content.decode()
    assert "Roasted oolong" in html and "Sponsored" in html
    assert Impression.objects.get().product_id == item.pk  # a UUID foreign key
    click_url = html.split('class="adengine-link" href="')[1].split('"')[0]
    resp = client.get(click_url, HTTP_USER_AGENT="Mozilla/5.0 Firefox/133.0")
    assert resp.status_code == 302 and resp["Location"] == f"/items/{item.pk}/"
    # the host's purchase model, through its adapter, is credited to the click
    with django_capture_on_commit_callbacks(execute=True):
        purchase = Purchase.objects.create(buyer=user, made_on=timezone.now())
        PurchaseItem.objects.create(purchase=purchase, item=item, count=2, each_cents=4500)
        purchase.save()
    conversion = Conversion.objects.get()
    assert conversion.campaign == campaign and conversion.revenue == Decimal("90.00")
    campaign.refresh_from_db()
    assert campaign.spent == Decimal("0.40")


def test_a_click_on_an_impression_never_written_is_restored_with_its_uuid_product(client, item):
    """The click link's signed fields carry this host's UUID product key; the restored row lands on its page."""
    import math
    from decimal import Decimal

    from adengine.models import Advertiser, Campaign, Creative, Impression, Placement

    Placement.objects.create(key="item-side", name="Item page", format="product", max_ads=1)
    campaign = Campaign.objects.create(
        advertiser=Advertiser.objects.create(name="Hill Co"), name="Oolong", status="active", bid=Decimal("0.40")
    )
    campaign.promoted_products.set([item])
    Creative.objects.create(
        campaign=campaign, asset_type="headline", language="en", text="Roasted oolong", status="approved",
        passes_rules=True,
    )  # fmt: skip
    html = client.get(f"/items/{item.pk}/", HTTP_USER_AGENT="Mozilla/5.0 Firefox/133.0").content.decode()
    click_url = html.split('class="adengine-link" href="')[1].split('"')[0]
    Impression.objects.all().delete()  # as if its process died before writing it
    resp = client.get(click_url, HTTP_USER_AGENT="Mozilla/5.0 Firefox/133.0")
    assert resp.status_code == 302 and resp["Location"] == f"/items/{item.pk}/"
    restored = Impression.objects.get()
    assert restored.product_id == item.pk and math.isnan(restored.propensity)
    campaign.refresh_from_db()
    assert campaign.spent == Decimal("0.40")
