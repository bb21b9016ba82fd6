"""The demo shop's catalog, customers (Django's user) and orders."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils.translation import get_language


class Category(models.Model):
    slug = models.SlugField("slug", unique=True, help_text="URL key of the category.")
    name_en = models.CharField("name (English)", max_length=100, help_text="English name.")
    name_zh = models.CharField("name (Chinese)", max_length=100, help_text="Chinese name.")

    class Meta:
        ordering = ["name_en"]
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.name_en

    def get_absolute_url(self) -> str:
        return reverse("shop:category", args=[self.slug])

    @property
    def name(self) -> str:
        """The name in the active language."""
        return self.name_zh if (get_language() or "").startswith("zh") else self.name_en


class Product(models.Model):
    sku = models.CharField("SKU", max_length=40, unique=True, help_text="Stock keeping unit.")
    category = models.ForeignKey(
        Category,
        models.PROTECT,
        related_name="products",
        verbose_name="category",
        help_text="Category the product is listed in.",
    )
    brand = models.CharField("brand", max_length=80, help_text="Brand name.")
    title_en = models.CharField("title (English)", max_length=200, help_text="English title.")
    title_zh = models.CharField("title (Chinese)", max_length=200, help_text="Chinese title.")
    description_en = models.TextField("description (English)", blank=True, help_text="English description.")
    description_zh = models.TextField("description (Chinese)", blank=True, help_text="Chinese description.")
    price = models.DecimalField("price", max_digits=10, decimal_places=2, help_text="Unit price in CNY.")
    stock = models.PositiveIntegerField("stock", default=0, help_text="Units in stock.")
    image_url = models.URLField("image URL", blank=True, help_text="Product image.")
    is_active = models.BooleanField("active", default=True, help_text="Shown in the storefront.")
    created_at = models.DateTimeField("created", auto_now_add=True, help_text="When it was created.")
    updated_at = models.DateTimeField("updated", auto_now=True, help_text="When it last changed.")

    class Meta:
        ordering = ["sku"]

    def __str__(self) -> str:
        return f"{self.title_en} ({self.sku})"

    def get_absolute_url(self) -> str:
        return reverse("shop:product", args=[self.sku])

    @property
    def title(self) -> str:
        """The title in the active language."""
        return self.title_zh if (get_language() or "").startswith("zh") else self.title_en

    @property
    def description(self) -> str:
        """The description in the active language."""
        return self.description_zh if (get_language() or "").startswith("zh") else self.description_en


class Order(models.Model):
    class Status(models.TextChoices):
        PLACED = "placed", "placed"
        PAID = "paid", "paid"
        CANCELLED = "cancelled", "cancelled"

    number = models.CharField("number", max_length=40, unique=True, help_text="Order number.")
    customer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="orders",
        verbose_name="customer",
        help_text="Who placed the order (empty for a guest).",
    )
    status = models.CharField(
        "status", max_length=20, choices=Status.choices, default=Status.PLACED, help_text="Order status."
    )
    created_at = models.DateTimeField("placed at", help_text="When the order was placed.")
    shipping_address = models.TextField("shipping address", blank=True, help_text="Where it goes.")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.number

    @property
    def total(self) -> Decimal:
        """Sum of the order's lines."""
        return sum((line.subtotal for line in self.lines.all()), Decimal("0"))


class OrderLine(models.Model):
    order = models.ForeignKey(Order, models.CASCADE, related_name="lines", verbose_name="order", help_text="The order.")
    product = models.ForeignKey(
        Product, models.PROTECT, related_name="order_lines", verbose_name="product", help_text="What was bought."
    )
    quantity = models.PositiveIntegerField("quantity", default=1, help_text="Units bought.")
    unit_price = models.DecimalField("unit price", max_digits=10, decimal_places=2, help_text="Price per unit.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["order", "product"], name="shop_orderline_unique")]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.product_id}"

    @property
    def subtotal(self) -> Decimal:
        """Quantity times unit price."""
        return self.unit_price * self.quantity
