"""The host shop's catalog as the campaign form picks from it: categories by key and name, products by name."""

from __future__ import annotations

import difflib
import functools
import operator
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db.models import Q

from adengine.adapters import fits, get_adapter
from adengine.conf import settings as ad_settings


@dataclass(frozen=True)
class CategoryOption:
    """One of the shop's categories: the key a campaign stores and its names in the shop's languages."""

    key: str
    names: tuple[str, ...]

    @property
    def name(self) -> str:
        """Its names in the shop's languages, "Running Shoes / 跑鞋" (the key when it has none)."""
        return " / ".join(dict.fromkeys(n for n in self.names if n and n != self.key)) or self.key

    @property
    def label(self) -> str:
        return f"{self.name} ({self.key})" if self.name != self.key else self.key


@dataclass(frozen=True)
class ProductOption:
    """A product as the picker lists it: its id, a title to recognise it by, and its image."""

    id: str
    text: str
    image: str


def shop_categories() -> list[CategoryOption]:
    """Every category of the shop, named in each of ADENGINE's languages, sorted by label."""
    adapter = get_adapter()
    found: dict[str, CategoryOption] = {}
    for category in adapter.categories():
        key = adapter.category_key(category)
        names = tuple(adapter.category_name(category, lang) for lang in ad_settings.LANGUAGES)
        found.setdefault(key, CategoryOption(key=key, names=names))
    return sorted(found.values(), key=lambda c: c.label.lower())


def find_category(value: str, options: list[CategoryOption]) -> CategoryOption | None:
    """The category whose key or name (in any language) is ``value``, case and spacing aside; None if none."""
    wanted = " ".join(value.split()).casefold()
    for option in options:
        if wanted in {option.key.casefold(), *(n.casefold() for n in option.names if n)}:
            return option
    return None


def closest_category(value: str, options: list[CategoryOption]) -> CategoryOption | None:
    """The category whose key or name is spelt most like ``value`` (for "did you mean"), or None."""
    spellings = {}
    for option in options:
        for text in (option.key, *option.names):
            if text:
                spellings.setdefault(text.casefold(), option)
    close = difflib.get_close_matches(value.casefold(), list(spellings), n=1, cutoff=0.6)
    return spellings[close[0]] if close else None


def product_label(product) -> str:
    """How the picker names a product: its title in the shop's languages and its brand."""
    adapter = get_adapter()
    found = (adapter.product_title(product, lang) for lang in ad_settings.LANGUAGES)
    titles = " / ".join(dict.fromkeys(t for t in found if t))
    brand = adapter.product_brand(product)
    text = f"{titles} · {brand}" if brand else titles
    return text or str(product)


def search_products(term: str, *, offset: int = 0, limit: int = 20) -> tuple[list[ProductOption], bool]:
    """Advertisable products whose title, SKU, brand (``ShopAdapter.product_search_fields``) contain every word of
    ``term``, or whose id is ``term``; one page of them and whether there are more."""
    adapter = get_adapter()
    qs = adapter.products()
    fields = adapter.product_search_fields()
    for word in term.split():
        if fields:
            qs = qs.filter(functools.reduce(operator.or_, (Q(**{f"{f}__icontains": word}) for f in fields)))
    pk = _as_pk(term.strip())
    if pk is not None:
        qs = qs | adapter.products().filter(pk=pk)
    rows = list(qs.distinct().order_by("pk")[offset : offset + limit + 1])
    options = [
        ProductOption(id=str(p.pk), text=product_label(p), image=adapter.product_image_url(p)) for p in rows[:limit]
    ]
    return options, len(rows) > limit


def _as_pk(value: str):
    """``value`` as the product model's primary key, or None when it cannot be one."""
    field = get_adapter().product_model()._meta.pk
    try:
        pk = field.to_python(value) if value else None
    except (ValidationError, ValueError, TypeError):
        return None
    return pk if pk is not None and fits(field, pk) else None
