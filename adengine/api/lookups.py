"""Lookups shared by the API's validators."""

from __future__ import annotations

from typing import Any

from adengine.adapters import get_adapter


def product_by_key(value: Any) -> Any:
    """The host's active product with this key (its SKU or other shop key, else its primary key of any type),
    or None for an unknown or malformed key."""
    adapter = get_adapter()
    found = adapter.find_product(str(value))
    if found is None or not adapter.products().filter(pk=found.pk).exists():
        return None
    return found
