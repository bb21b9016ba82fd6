"""Storefront pages of the demo shop: home, category, product, search, cart and checkout."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.html import escape
from django.views.decorators.http import require_POST

from .models import Category, Order, OrderLine, Product

CART_KEY = "cart"
MAX_QUERY = 200


def _active() -> Q:
    return Q(is_active=True)


def home(request: HttpRequest) -> HttpResponse:
    """Front page: categories and popular products."""
    popular = (
        Product.objects.filter(_active())
        .annotate(n=Count("order_lines"))
        .order_by("-n", "sku")
        .select_related("category")[:12]
    )
    return render(request, "shop/home.html", {"popular": popular})


def category(request: HttpRequest, slug: str) -> HttpResponse:
    """A category's products, paginated."""
    cat = get_object_or_404(Category, slug=slug)
    products = Product.objects.filter(_active(), category=cat).order_by("price")
    page = Paginator(products, 24).get_page(request.GET.get("page"))
    return render(request, "shop/category.html", {"category": cat, "page": page})


def product(request: HttpRequest, sku: str) -> HttpResponse:
    """A product page; the template records the view in adengine's behaviour log."""
    item = get_object_or_404(Product.objects.select_related("category"), sku=sku, is_active=True)
    related = Product.objects.filter(_active(), category=item.category).exclude(pk=item.pk)[:4]
    return render(request, "shop/product.html", {"product": item, "related": related})


def search(request: HttpRequest) -> HttpResponse:
    """Full-text-ish search over titles, brands and descriptions in both languages."""
    q = (request.GET.get("q") or "").replace("\x00", "").strip()[:MAX_QUERY]  # PostgreSQL cannot compare a NUL
    results = Product.objects.none()
    if q:
        cond = Q()
        for term in q.split():
            cond &= (
                Q(title_en__icontains=term)
                | Q(title_zh__icontains=term)
                | Q(brand__icontains=term)
                | Q(category__name_en__icontains=term)
                | Q(category__name_zh__icontains=term)
            )
        results = Product.objects.filter(_active()).filter(cond).select_related("category")[:48]
    return render(request, "shop/search.html", {"q": q, "results": results})


def _cart(request: HttpRequest) -> dict[str, int]:
    return dict(request.session.get(CART_KEY, {}))


def cart(request: HttpRequest) -> HttpResponse:
    """The cart held in the session."""
    items = _cart(request)
    products = {p.sku: p for p in Product.objects.filter(sku__in=items)}
    lines = [
        {"product": products[sku], "quantity": qty, "subtotal": products[sku].price * qty}
        for sku, qty in items.items()
        if sku in products
    ]
    total = sum((line["subtotal"] for line in lines), Decimal("0"))
    just_added = None
    added_sku = request.session.pop("just_added", None)
    if added_sku:
        just_added = products.get(added_sku)
    return render(request, "shop/cart.html", {"lines": lines, "total": total, "just_added": just_added})


@require_POST
def cart_add(request: HttpRequest, sku: str) -> HttpResponse:
    """Add one unit of a product to the cart."""
    item = get_object_or_404(Product, sku=sku, is_active=True)
    items = _cart(request)
    items[item.sku] = min(items.get(item.sku, 0) + 1, 99)
    request.session[CART_KEY] = items
    request.session["just_added"] = item.sku
    return redirect("shop:cart")


@require_POST
def cart_remove(request: HttpRequest, sku: str) -> HttpResponse:
    """Remove a product from the cart."""
    items = _cart(request)
    items.pop(sku, None)
    request.session[CART_KEY] = items
    return redirect("shop:cart")


@require_POST
def checkout(request: HttpRequest) -> HttpResponse:
    """Turn the cart into an Order (no payment in the demo)."""
    items = _cart(request)
    products = {p.sku: p for p in Product.objects.filter(sku__in=items, is_active=True)}
    if not products:
        messages.error(request, "Your cart is empty.")
        return redirect("shop:cart")
    with transaction.atomic():
        order = Order.objects.create(
            number=f"W{timezone.now():%Y%m%d}-{uuid.uuid4().hex[:8].upper()}",
            customer=request.user if request.user.is_authenticated else None,
            created_at=timezone.now(),
        )
        OrderLine.objects.bulk_create(
            OrderLine(order=order, product=products[sku], quantity=qty, unit_price=products[sku].price)
            for sku, qty in items.items()
            if sku in products
        )
    request.session[CART_KEY] = {}
    return render(request, "shop/checkout_done.html", {"order": order})


PALETTE = ["#2563eb", "#16a34a", "#dc2626", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777"]


def placeholder_image(request: HttpRequest, sku: str) -> HttpResponse:
    """An SVG stand-in for a product photo (the demo works offline)."""
    item = get_object_or_404(Product.objects.select_related("category"), sku=sku)
    colour = PALETTE[item.category_id % len(PALETTE)]
    label = escape(item.category.name_en)
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="400" height="300" viewBox="0 0 400 300">'
        f'<rect width="400" height="300" fill="{colour}"/>'
        f'<text x="200" y="150" font-family="sans-serif" font-size="28" fill="#fff" text-anchor="middle">{label}</text>'
        f'<text x="200" y="190" font-family="sans-serif" font-size="18" fill="#fff" text-anchor="middle">'
        f"{escape(item.brand)}</text></svg>"
    )
    resp = HttpResponse(svg, content_type="image/svg+xml")
    resp["Cache-Control"] = "public, max-age=86400"
    return resp
