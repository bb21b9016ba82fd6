"""The demo shop's synthetic shoppers for ``adengine_simulate``: the latent interests the demo data was
generated from (same seed), turned into click and purchase probabilities.

This is host code (adengine's ``SIMULATION_TRUTH`` setting names it): adengine never sees the latent
interests, only what the shoppers do.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid

from django.db import transaction

from fixtures.demo_data import CATALOG, build_catalog, build_customers
from shop.models import Order, OrderLine, Product

SEED, CUSTOMERS = 7, 1200  # as `python -m fixtures.demo_data` generates them
PAGES = [("home", 0.25), ("category", 0.25), ("product", 0.35), ("search", 0.15)]


class DemoTruth:
    def __init__(self) -> None:
        rng = random.Random(SEED)
        build_catalog(rng)  # advances the generator exactly as the demo data did
        self.customers = {c.customer_id: c for c in build_customers(rng, CUSTOMERS)}
        self.products: dict[int, list] = {}
        self.by_pk: dict = {}
        for pk, sku, slug, price in Product.objects.filter(is_active=True).values_list(
            "pk", "sku", "category__slug", "price"
        ):
            ci = int(sku[-2:]) if sku[-2:].isdigit() else None
            if ci is None:
                continue
            self.products.setdefault(ci, []).append((pk, sku, slug))
            self.by_pk[pk] = (ci, int(sku[4]) if sku[4].isdigit() else -1, price)

    def shoppers(self, rng: random.Random, n: int):
        from adengine.models import Shopper

        people = list(Shopper.objects.filter(user__username__in=list(self.customers)).select_related("user"))
        rng.shuffle(people)
        return people[:n]

    def _latent(self, shopper):
        return self.customers.get(shopper.user.username) if shopper.user_id else None

    def _weight(self, shopper, product_pk) -> tuple[float, bool]:
        cust = self._latent(shopper)
        info = self.by_pk.get(product_pk)
        if cust is None or info is None:
            return 0.0, False
        ci, ptype, _ = info
        if ci not in cust.cats:
            return 0.0, False
        return cust.cat_weights[cust.cats.index(ci)], ptype in cust.types.get(ci, set())

    def page(self, shopper, rng: random.Random):
        from adengine.serving import PageContext

        cust = self._latent(shopper)
        page = rng.choices([p for p, _ in PAGES], [w for _, w in PAGES])[0]
        if cust is not None and rng.random() < 0.9:
            ci = rng.choices(cust.cats, cust.cat_weights)[0]
        else:
            ci = rng.randrange(len(CATALOG))
        pk, _, slug = rng.choice(self.products[ci])
        if page == "home":
            return PageContext(page="home"), ""
        if page == "category":
            return PageContext(page="category", category=slug), ""
        if page == "product":
            return PageContext(page="product", product=pk), slug
        return PageContext(page="search", query=CATALOG[ci][1].lower()), ""

    def interests(self, shopper) -> set[str]:
        """The shopper's top three latent categories (slugs)."""
        cust = self._latent(shopper)
        if cust is None:
            return set()
        ranked = sorted(zip(cust.cat_weights, cust.cats, strict=True), reverse=True)[:3]
        return {CATALOG[ci][0] for _, ci in ranked}

    def click_probability(self, shopper, ad) -> float:
        if ad.product is None:
            return 0.004
        weight, favourite_type = self._weight(shopper, ad.product.pk)
        return 0.004 + 0.10 * weight * (1.6 if favourite_type else 1.0)

    def conversion_probability(self, shopper, ad) -> float:
        if ad.product is None:
            return 0.0
        weight, _ = self._weight(shopper, ad.product.pk)
        return 0.03 + 0.25 * weight

    def place_order(self, shopper, ad, when: dt.datetime):
        product = Product.objects.get(pk=ad.product.pk)
        with transaction.atomic():  # the order signal runs after commit, when the line exists
            order = Order.objects.create(
                number=f"SIM-{uuid.uuid4().hex[:12].upper()}", customer=shopper.user, created_at=when
            )
            OrderLine.objects.create(order=order, product=product, quantity=1, unit_price=product.price)
        return order
