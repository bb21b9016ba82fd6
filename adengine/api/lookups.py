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


class UnknownProduct(ValueError):
    """A product key that names no active product, or several (its message says which and what to send)."""


def product_by_key(value: Any) -> Any:
    """The host's active product that ``value`` names, as the shop's own key (its SKU: ``product_key_fields``)
    or as its primary key; UnknownProduct when it names none, or two different products (one by key, another by
    id), with a message that says how to name each unambiguously."""
    adapter = get_adapter()
    key = str(value)
    label = adapter.product_key_label()
    either = f"{label} or id" if label != "id" else "id"
    if not 0 < len(key) <= 64:
        raise UnknownProduct(f"a product {either}: 1-64 characters.")
    matches = adapter.match_products([key]).get(key, [])
    if matches:
        active = set(adapter.products().filter(pk__in=[p.pk for p in matches]).values_list("pk", flat=True))
        matches = [p for p in matches if p.pk in active]
    if not matches:
        raise UnknownProduct(f"no product with {either} {key!r}.")
    if len(matches) > 1:
        options = []
        for p in matches:
            own = adapter.product_key(p)
            options.append(f"{own if own != key else str(p.pk)!r} for id {p.pk} ({label} {own!r})")
        raise UnknownProduct(
            f"{key!r} is ambiguous: it is the {either} of {len(matches)} products; send " + " or ".join(options) + "."
        )
    return matches[0]


def product_refs(products) -> list[dict[str, str]]:
    """Products as API answers name them: ``product_id`` (the primary key, as a string) and ``product_key`` (the
    shop's own key, e.g. its SKU)."""
    adapter = get_adapter()
    return [{"product_id": str(p.pk), "product_key": adapter.product_key(p)} for p in products]
