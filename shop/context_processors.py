"""Template context shared by every storefront page."""

from __future__ import annotations

from django.http import HttpRequest

from .models import Category


def shop(request: HttpRequest) -> dict:
    """Categories for the navigation bar and the cart size."""
    cart = request.session.get("cart", {}) if hasattr(request, "session") else {}
    return {
        "nav_categories": Category.objects.all(),
        "cart_count": sum(cart.values()),
    }
