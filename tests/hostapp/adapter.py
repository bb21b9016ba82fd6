"""The second host's adapter: everything host-specific, nothing else."""

from __future__ import annotations

import uuid
from decimal import Decimal

from adengine.adapters import ImportNotSupported, OrderLineInfo, ShopAdapter

# Imported orders get a UUID derived from their order_id, which keeps a re-import idempotent
# without a column for the external id.
IMPORTED_ORDERS = uuid.UUID("6f1d3c52-6a0e-4f4b-9a59-1d4c1f0f8e21")


class HostAdapter(ShopAdapter):
    def products(self):
        return self.product_model()._default_manager.filter(listed=True)

    def card_products(self, pks):
        return self.products().filter(pk__in=pks).select_related("section")

    def product_title(self, product, language):
        return product.name

    def product_description(self, product, language):
        return product.blurb

    def product_brand(self, product):
        return product.maker

    def product_category(self, product):
        return product.section

    def category_key(self, category):
        return category.code

    def category_name(self, category, language):
        return category.label if category else ""

    def product_price(self, product):
        return Decimal(product.cost_cents) / 100

    def product_stock(self, product):
        return product.on_hand

    def product_url(self, product):
        return f"/items/{product.pk}/"

    def order_key(self, order):
        return str(order.pk)

    def order_customer(self, order):
        return order.buyer

    def order_placed_at(self, order):
        return order.made_on

    def order_is_countable(self, order):
        return not order.voided

    def order_lines(self, order):
        return [
            OrderLineInfo(product=i.item, quantity=i.count, unit_price=Decimal(i.each_cents) / 100)
            for i in order.items.select_related("item")
        ]

    def orders_since(self, since):
        qs = self.order_model()._default_manager.all()
        if since is not None:
            qs = qs.filter(made_on__gte=since)
        return qs.order_by("made_on").iterator()

    def import_product(self, row):
        raise ImportNotSupported("this shop manages its catalog itself; import events and orders only")

    def import_order(self, order_id, customer, placed_at, lines):
        # only the one-order method: the importer's batches reach it through ShopAdapter.import_orders
        from .models import Purchase, PurchaseItem

        pk = uuid.uuid5(IMPORTED_ORDERS, order_id)
        existing = Purchase.objects.filter(pk=pk).first()
        if existing is not None:
            return existing, False
        purchase = Purchase.objects.create(pk=pk, buyer=customer, made_on=placed_at)
        PurchaseItem.objects.bulk_create(
            PurchaseItem(
                purchase=purchase, item=line.product, count=line.quantity, each_cents=int(line.unit_price * 100)
            )
            for line in lines
        )
        return purchase, True
