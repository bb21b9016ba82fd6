"""factory_boy factories for the demo shop and adengine models."""

from __future__ import annotations

from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from adengine.models import Advertiser, BehaviourEvent, Campaign, Creative, Placement, Shopper
from shop.models import Category, Order, OrderLine, Product


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    first_name = "Ada"
    last_name = "Lovelace"


class CategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Category
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"cat-{n}")
    name_en = factory.LazyAttribute(lambda o: o.slug.replace("-", " ").title())
    name_zh = "类别"


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    sku = factory.Sequence(lambda n: f"SKU-{n:05d}")
    category = factory.SubFactory(CategoryFactory)
    brand = "Acme"
    title_en = factory.Sequence(lambda n: f"Test product {n}")
    title_zh = factory.Sequence(lambda n: f"测试商品{n}")
    description_en = "A product for tests."
    description_zh = "测试用的商品。"
    price = Decimal("99.00")
    stock = 10


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Order

    number = factory.Sequence(lambda n: f"T{n:06d}")
    customer = factory.SubFactory(UserFactory)
    created_at = factory.LazyFunction(timezone.now)


class OrderLineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OrderLine

    order = factory.SubFactory(OrderFactory)
    product = factory.SubFactory(ProductFactory)
    quantity = 1
    unit_price = Decimal("99.00")


class ShopperFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Shopper

    user = factory.SubFactory(UserFactory)


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BehaviourEvent

    shopper = factory.SubFactory(ShopperFactory)
    kind = BehaviourEvent.Kind.VIEW
    product = factory.SubFactory(ProductFactory)
    occurred_at = factory.LazyFunction(timezone.now)
    source = BehaviourEvent.Source.TAG


class AdvertiserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Advertiser
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Advertiser {n}")


class PlacementFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Placement
        django_get_or_create = ("key",)

    key = factory.Sequence(lambda n: f"slot-{n}")
    name = factory.LazyAttribute(lambda o: o.key)
    format = Placement.Format.PRODUCT
    max_ads = 1


class CampaignFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Campaign
        skip_postgeneration_save = True

    advertiser = factory.SubFactory(AdvertiserFactory)
    name = factory.Sequence(lambda n: f"Campaign {n}")
    status = Campaign.Status.ACTIVE
    languages = ["en"]
    bid = Decimal("1.00")
    total_budget = Decimal("100")

    @factory.post_generation
    def products(self, create, extracted, **kwargs):
        if create and extracted:
            self.promoted_products.set(extracted)


class CreativeFactory(factory.django.DjangoModelFactory):
    """An approved headline that passed the rules (ready to serve)."""

    class Meta:
        model = Creative

    campaign = factory.SubFactory(CampaignFactory)
    asset_type = Creative.AssetType.HEADLINE
    language = "en"
    text = factory.Sequence(lambda n: f"Headline number {n}")
    status = Creative.Status.APPROVED
    passes_rules = True
    score = 0.8
