"""Orders credited to the shopper's last ad click within the window; campaigns report ROAS."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from adengine.models import AdEvent, Conversion, Shopper
from adengine.selectors.performance import totals
from adengine.services.shoppers import get_or_create_for_user
from adengine.serving import decide, tokens
from tests.conftest import adengine_settings
from tests.factories import OrderFactory, OrderLineFactory, ProductFactory, UserFactory
from tests.strategy.test_daily_rollup import assert_daily_is_hourly_by_day

from .test_tracking import BROWSER

pytestmark = pytest.mark.django_db


def serve_and_click(client, shopper, placement_key="home-hero"):
    (ad,) = decide(placement_key=placement_key, shopper=shopper).ads
    client.get(tokens.urls(ad.nonce)["click_url"], HTTP_USER_AGENT=BROWSER)
    return ad


def test_order_is_attributed_to_the_last_click(client, placement, make_campaign, django_capture_on_commit_callbacks):
    # given a customer who clicked an ad of campaign A, then later one of campaign B
    user = UserFactory()
    shopper = get_or_create_for_user(user=user)
    a = make_campaign()
    first = serve_and_click(client, shopper)
    assert first.campaign_id == a.pk
    b = make_campaign()
    a.status = "paused"
    a.save()
    second = serve_and_click(client, shopper)
    assert second.campaign_id == b.pk
    # when they place an order worth 2 x 99.00
    with django_capture_on_commit_callbacks(execute=True):
        order = OrderFactory(customer=user)
        OrderLineFactory(order=order, quantity=2, product=ProductFactory())
        order.save()  # the signal fires after commit, when the lines exist
    # then B, the last click, gets the conversion with the order's revenue
    conversion = Conversion.objects.get()
    assert conversion.campaign_id == b.pk and conversion.revenue == Decimal("198.00")
    assert conversion.click.impression.nonce == second.nonce
    # and the campaigns' statistics show it
    stats = {pk: f.as_dict() for pk, f in totals([a.pk, b.pk]).items()}
    assert stats[b.pk]["conversions"] == 1 and stats[b.pk]["clicks"] == 1 and stats[b.pk]["impressions"] == 1
    assert stats[b.pk]["spend"] == 1.0 and stats[b.pk]["revenue"] == 198.0 and stats[b.pk]["roas"] == 198.0
    assert stats[b.pk]["ctr"] == 1.0 and stats[b.pk]["conversion_rate"] == 1.0
    assert stats[a.pk]["conversions"] == 0 and stats[a.pk]["roas"] == 0.0


def test_clicks_outside_the_window_or_by_others_do_not_count(client, placement, make_campaign):
    make_campaign()
    user, other = UserFactory(), UserFactory()
    shopper = get_or_create_for_user(user=user)
    serve_and_click(client, get_or_create_for_user(user=other))  # someone else's click
    old = serve_and_click(client, shopper)
    AdEvent.objects.filter(impression__nonce=old.nonce).update(occurred_at=timezone.now() - dt.timedelta(days=8))
    from adengine.services.attribution import attribute_order

    order = OrderFactory(customer=user)
    OrderLineFactory(order=order)
    assert attribute_order(order=order) is None
    # with a longer window it counts, once
    with adengine_settings(ATTRIBUTION_WINDOW_DAYS=10):
        conversion = attribute_order(order=order)
        assert conversion is not None and attribute_order(order=order) == conversion
    assert Conversion.objects.count() == 1


def test_bot_clicks_and_cancelled_orders_are_not_conversions(client, placement, make_campaign):
    make_campaign()
    user = UserFactory()
    shopper = get_or_create_for_user(user=user)
    (ad,) = decide(placement_key="home-hero", shopper=shopper).ads
    client.get(tokens.urls(ad.nonce)["click_url"], HTTP_USER_AGENT="Googlebot/2.1")
    from adengine.services.attribution import attribute_order

    order = OrderFactory(customer=user)
    OrderLineFactory(order=order)
    assert attribute_order(order=order) is None
    serve_and_click(client, shopper)
    order.status = "cancelled"
    assert attribute_order(order=order) is None


def test_guest_checkout_after_an_ad_click(client, placement, make_campaign, django_capture_on_commit_callbacks):
    # given an anonymous visitor who saw the home page ad and clicked it
    product = ProductFactory()
    campaign = make_campaign(product=product)
    resp = client.get(reverse("shop:home"), HTTP_USER_AGENT=BROWSER)
    html = resp.content.decode()
    assert "Sponsored" in html
    click_url = html.split('class="adengine-link" href="')[1].split('"')[0]
    landing = client.get(click_url, HTTP_USER_AGENT=BROWSER)
    assert landing.status_code == 302 and landing["Location"] == product.get_absolute_url()
    # when they buy the product as a guest
    client.post(reverse("shop:cart_add", args=[product.sku]))
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("shop:checkout"))
    # then the order is credited to the campaign
    conversion = Conversion.objects.get()
    assert conversion.campaign == campaign and conversion.shopper == Shopper.objects.get(user=None)


@pytest.mark.parametrize("rolled_up", [True, False])
def test_a_cancelled_or_refunded_order_gives_its_credit_back(
    client, placement, make_campaign, django_capture_on_commit_callbacks, rolled_up
):
    """Cancelled and refunded orders stayed credited. Now a status change reverses or adjusts the conversion,
    in the roll-up too, and withdraws the purchases from the shopper's behaviour."""
    from adengine.models import BehaviourEvent
    from adengine.services.strategy import update_strategy

    user = UserFactory()
    shopper = get_or_create_for_user(user=user)
    campaign = make_campaign()
    serve_and_click(client, shopper)
    with django_capture_on_commit_callbacks(execute=True):
        order = OrderFactory(customer=user)
        line = OrderLineFactory(order=order, quantity=2, product=ProductFactory())
        order.save()
    assert totals([campaign.pk])[campaign.pk].revenue == Decimal("198.00")
    if rolled_up:
        update_strategy(lag_seconds=0)
    # when the shop refunds one of the two items (the line changes), then cancels the order
    with django_capture_on_commit_callbacks(execute=True):
        line.quantity = 1
        line.save()
        order.save()
    f = totals([campaign.pk])[campaign.pk]
    assert (f.conversions, f.revenue) == (1, Decimal("99.00"))
    with django_capture_on_commit_callbacks(execute=True):
        order.status = "cancelled"
        order.save()
    # then the campaign is credited nothing, in every view, and the purchase is not the shopper's taste
    conversion = Conversion.objects.get()
    assert conversion.reversed_at is not None and conversion.revenue == 0
    f = totals([campaign.pk])[campaign.pk]
    assert (f.conversions, f.revenue, f.clicks) == (0, Decimal(0), 1)
    if rolled_up:
        assert_daily_is_hourly_by_day()
    update_strategy(lag_seconds=0)
    f = totals([campaign.pk])[campaign.pk]
    assert (f.conversions, f.revenue) == (0, Decimal(0))
    campaign.refresh_from_db()
    assert campaign.converted == 0 and campaign.attributed_revenue == 0
    assert not BehaviourEvent.objects.filter(shopper=shopper, kind="purchase").exists()
    # and reinstating the order credits it again, once
    with django_capture_on_commit_callbacks(execute=True):
        order.status = "placed"
        order.save()
    update_strategy(lag_seconds=0)
    f = totals([campaign.pk])[campaign.pk]
    assert (f.conversions, f.revenue) == (1, Decimal("99.00"))
    # and the daily roll-up followed every correction of the hourly one
    assert_daily_is_hourly_by_day()
