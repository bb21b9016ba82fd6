"""The demo storefront feeds adengine's behaviour log and keeps working when adengine fails."""

from __future__ import annotations

import pytest
from django.urls import reverse

from adengine.models import BehaviourEvent, Shopper
from shop.models import Order
from tests.factories import ProductFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_product_page_records_a_view_for_an_anonymous_session(client):
    # given a product
    product = ProductFactory()
    # when an anonymous visitor opens its page
    resp = client.get(reverse("shop:product", args=[product.sku]))
    # then the page renders and a view by an anonymous shopper is logged
    assert resp.status_code == 200
    event = BehaviourEvent.objects.get()
    assert event.kind == "view" and event.product_id == product.pk
    assert event.shopper.user is None and event.shopper.anonymous_key
    assert event.shopper.last_event_at == event.occurred_at


def test_search_records_the_query_without_personal_data(client):
    resp = client.get(reverse("shop:search"), {"q": "running shoes jane@example.com +86 138 0013 8000"})
    assert resp.status_code == 200
    event = BehaviourEvent.objects.get()
    assert event.kind == "search"
    assert event.query == "running shoes"


def test_cart_and_checkout_appear_in_the_log(client, django_capture_on_commit_callbacks):
    # given a logged-in customer and a product
    user = UserFactory()
    client.force_login(user)
    product = ProductFactory(price="120.00")
    # when they add it to the cart and check out
    client.post(reverse("shop:cart_add", args=[product.sku]), follow=True)
    with django_capture_on_commit_callbacks(execute=True):
        resp = client.post(reverse("shop:checkout"))
    # then an order exists, and cart and purchase events are logged for the user's shopper
    assert resp.status_code == 200
    order = Order.objects.get()
    kinds = sorted(BehaviourEvent.objects.filter(shopper__user=user).values_list("kind", flat=True))
    assert kinds == ["cart", "purchase"]
    purchase = BehaviourEvent.objects.get(kind="purchase")
    assert purchase.revenue == 120 and purchase.dedupe_key == f"order:{order.number}:{product.pk}"


def test_saving_an_order_twice_records_its_purchases_once(django_capture_on_commit_callbacks):
    from tests.factories import OrderLineFactory

    with django_capture_on_commit_callbacks(execute=True):
        line = OrderLineFactory()
        line.order.save()
    with django_capture_on_commit_callbacks(execute=True):
        line.order.save()
    assert BehaviourEvent.objects.filter(kind="purchase").count() == 1


def test_storefront_renders_when_adengine_raises(client, monkeypatch):
    # given adengine's recording fails
    def boom(**kwargs):
        raise RuntimeError("adengine is down")

    monkeypatch.setattr("adengine.services.behaviour.record_event", boom)
    product = ProductFactory()
    # when the product page is opened, then it still renders
    resp = client.get(reverse("shop:product", args=[product.sku]))
    assert resp.status_code == 200
    assert product.title_en.encode() in resp.content


def test_login_carries_anonymous_behaviour_over(client):
    product = ProductFactory()
    client.get(reverse("shop:product", args=[product.sku]))
    user = UserFactory()
    user.set_password("pw-123456")
    user.save()
    client.post(reverse("login"), {"username": user.username, "password": "pw-123456"})
    assert BehaviourEvent.objects.get().shopper.user == user
    assert not Shopper.objects.filter(user__isnull=True).exists()


def test_no_consent_means_no_browsing_kept(client):
    user = UserFactory()
    Shopper.objects.create(user=user, personalisation=False)
    client.force_login(user)
    product = ProductFactory()
    client.get(reverse("shop:product", args=[product.sku]))
    assert not BehaviourEvent.objects.exists()


def test_guest_checkout_is_logged_for_the_session(client, django_capture_on_commit_callbacks):
    # given an anonymous visitor who viewed and carted a product
    product = ProductFactory()
    client.get(reverse("shop:product", args=[product.sku]))
    client.post(reverse("shop:cart_add", args=[product.sku]), follow=True)
    # when they check out as a guest
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("shop:checkout"))
    # then view, cart and purchase all belong to the same anonymous shopper
    shopper = Shopper.objects.get()
    assert shopper.user is None
    assert sorted(shopper.events.values_list("kind", flat=True)) == ["cart", "purchase", "view"]


@pytest.mark.parametrize(
    "url,status", [("/search/?q=%00", 200), ("/search/?q=shoes%00", 200), ("/p/%00/", 404), ("/p/SKU-1%00/", 404),
                   ("/img/%00.svg", 404), ("/cart/add/%00/", 404)],
)  # fmt: skip
def test_a_nul_in_a_storefront_url_is_never_a_500(client, url, status):
    assert client.get(url).status_code == status


def test_a_search_query_is_stored_without_control_characters():
    from adengine.services.behaviour import record_event

    shopper = Shopper.objects.create(anonymous_key="c" * 32)
    event = record_event(shopper=shopper, kind="search", query="yoga\x00 mat\x01\x7f mats", trigger_refresh=False)
    event.refresh_from_db()
    assert event.query == "yoga mat mats"
