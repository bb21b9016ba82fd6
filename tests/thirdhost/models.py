"""A third host, shaped like the big open-source Django shops: a product is sold as variants (each with its SKU,
price, currency and stock), filed in several categories; orders have a status that can be cancelled or
refunded and lines that point at variants; the cart is an AJAX endpoint that sends its own signal."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.dispatch import Signal

# sent by the cart endpoint: sender=CartLine, request=..., variant=..., quantity=...
line_added = Signal()


class Category(models.Model):
    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    categories = models.ManyToManyField(Category, related_name="products")
    is_published = models.BooleanField(default=True)

    def __str__(self) -> str:
        return self.name


class ProductVariant(models.Model):
    product = models.ForeignKey(Product, models.CASCADE, related_name="variants")
    sku = models.CharField(max_length=40, unique=True)
    price_amount = models.DecimalField(max_digits=10, decimal_places=2)
    currency = models.CharField(max_length=3, default="EUR")
    quantity_available = models.IntegerField(default=0)


class Order(models.Model):
    class Status(models.TextChoices):
        UNFULFILLED = "unfulfilled"
        FULFILLED = "fulfilled"
        CANCELED = "canceled"
        REFUNDED = "refunded"

    number = models.CharField(max_length=20, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.UNFULFILLED)
    created = models.DateTimeField()


class OrderLine(models.Model):
    order = models.ForeignKey(Order, models.CASCADE, related_name="lines")
    variant = models.ForeignKey(ProductVariant, models.PROTECT)
    quantity = models.PositiveIntegerField(default=1)
    unit_price_gross = models.DecimalField(max_digits=10, decimal_places=2)


class CartLine(models.Model):
    session_key = models.CharField(max_length=40)
    variant = models.ForeignKey(ProductVariant, models.CASCADE)
    quantity = models.PositiveIntegerField(default=1)
