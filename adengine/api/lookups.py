"""Lookups and id bounds shared by the API's validators and URLs."""

from __future__ import annotations

from typing import Any

from django.db import connection

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


def _in_range(pk_field: Any, value: Any) -> bool:
    internal = pk_field.get_internal_type()
    if internal not in connection.ops.integer_field_ranges:
        return True
    low, high = connection.ops.integer_field_range(internal)
    return (low is None or value >= low) and (high is None or value <= high)


def product_by_pk(value: Any) -> Any:
    """The host's active product with this primary key (any key type), or None for a bad or unknown key."""
    adapter = get_adapter()
    pk_field = adapter.product_model()._meta.pk
    try:
        pk = pk_field.to_python(value)
    except Exception:  # a malformed key for the host's key type (not a number, not a UUID ...)
        return None
    if pk is None or not _in_range(pk_field, pk):  # out of the column's range: unknown, not a database error
        return None
    return adapter.products().filter(pk=pk).first()
