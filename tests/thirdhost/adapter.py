"""The third host's adapter: products priced and stocked through their variants, several categories, order
statuses, a cart signal."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import Min, Sum

from adengine.adapters import OrderLineInfo, ShopAdapter

COUNTABLE = {"unfulfilled", "fulfilled"}


class ThirdAdapter(ShopAdapter):
    def products(self):
        return self.product_model()._default_manager.filter(is_published=True)

    def product_title(self, product, language):
        return product.name

    def product_description(self, product, language):
        return product.description

    def product_category(self, product):
        return product.categories.order_by("pk").first()

    def product_categories(self, product):
        return list(product.categories.order_by("pk"))

    def category_name(self, category, language):
        return category.name if category else ""

    def product_price(self, product):
        return product.variants.aggregate(p=Min("price_amount"))["p"]

    def product_currency(self, product):
        variant = product.variants.order_by("price_amount").first()
        return variant.currency if variant else ""

    def product_stock(self, product):
        return product.variants.aggregate(n=Sum("quantity_available"))["n"] or 0

    def product_url(self, product):
        return f"/products/{product.pk}/"

    def match_products(self, keys):
        """A variant's SKU names its product; a number names the product itself (both, two products: ambiguous)."""
        from .models import Product, ProductVariant

        found = {}
        for variant in ProductVariant.objects.filter(sku__in=keys).select_related("product"):
            found.setdefault(variant.sku, []).append(variant.product)
        numbers = [k for k in keys if k.isascii() and k.isdigit() and len(k) <= 18]
        for product in Product.objects.filter(pk__in=numbers):
            matches = found.setdefault(str(product.pk), [])
            if all(m.pk != product.pk for m in matches):
                matches.append(product)
        return found

    def product_key(self, product):
        """Its first variant's SKU (any of its variants' SKUs names it)."""
        variant = product.variants.order_by("pk").first()
        return variant.sku if variant else str(product.pk)

    def product_key_label(self):
        return "SKU"

    def order_key(self, order):
        return order.number

    def order_customer(self, order):
        return order.user

    def order_placed_at(self, order):
        return order.created

    def order_is_countable(self, order):
        return order.status in COUNTABLE

    def order_lines(self, order):
        return [
            OrderLineInfo(
                product=line.variant.product, quantity=line.quantity, unit_price=Decimal(line.unit_price_gross)
            )
            for line in order.lines.select_related("variant__product")
        ]

    def cart_signals(self):
        from .models import CartLine, line_added

        return [(line_added, CartLine)]

    def cart_event(self, sender, **kwargs):
        return kwargs["request"], kwargs["variant"].product, kwargs.get("quantity", 1)
