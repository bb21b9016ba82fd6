"""Lookups and id bounds shared by the API's validators and URLs."""

from __future__ import annotations

from typing import Any

from adengine.adapters import get_adapter

# Object ids in paths and bodies: 1-18 digits, so every one fits PostgreSQL's bigint (a larger one is simply unknown,
# never a database error).
ID_MAX = 10**18 - 1
ID_SCHEMA = {"type": "integer", "minimum": 0, "maximum": ID_MAX}


class IdConverter:
    """A path converter for object ids: 1-18 digits (``int`` would pass any length on to the database)."""

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


def product_by_key(value: Any) -> Any:
    """The host's active product with this key (its SKU or other shop key, else its primary key of any type),
    or None for an unknown or malformed key."""
    adapter = get_adapter()
    found = adapter.find_product(str(value))
    if found is None or not adapter.products().filter(pk=found.pk).exists():
        return None
    return found
