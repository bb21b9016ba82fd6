"""Lookups shared by the API's validators."""

from __future__ import annotations

from typing import Any

from adengine.adapters import get_adapter


def product_by_pk(value: Any) -> Any:
    """The host's active product with this primary key (any key type), or None for a bad or unknown key."""
    adapter = get_adapter()
    try:
        return adapter.products().filter(pk=adapter.product_model()._meta.pk.to_python(value)).first()
    except Exception:  # a malformed key for the host's key type (not a number, not a UUID ...)
        return None
