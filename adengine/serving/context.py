"""The page a decision is for: what it shows (page type, product, category, search), its language, and how
relevant each campaign is to it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from adengine.conf import settings as ad_settings

from .snapshot import PlacementEntry, Snapshot, cjk_bigrams, words

CONTEXT_PRODUCT = 1.0  # relevance of a campaign promoting the product on the page
CONTEXT_CATEGORY = 0.8  # ... targeting the page's category (or promoting a product in it)
CONTEXT_QUERY = 0.9  # ... whose keywords the search query contains
CLOSE_RELEVANCE = 0.75  # the campaign's "close" audience (adengine.services.strategy uses the same bound)


@dataclass(frozen=True)
class PageContext:
    """What the page shows: its type and the product, category or search query on it (not personal)."""

    page: str = ""
    product: object | None = None
    category: str = ""
    query: str = ""
    client: str = ""  # "api": asked for through the decision API (an app), "": a storefront page


def resolve_language(language: str | None) -> str:
    """The shop language a request's language (``zh-CN``, ``en``) names, else the default language."""
    langs = list(ad_settings.LANGUAGES)
    if language:
        lang = language.lower()
        for known in langs:
            if lang == known or lang.startswith(known + "-"):
                return known
    return langs[0]


def page_kind(context: PageContext) -> str:
    """What kind of page this is for the relevance floors: "product", "search" or "category" when it shows one,
    else the page name the slot or app passed ("home", ...)."""
    if context.product is not None:
        return "product"
    if context.query:
        return "search"
    if context.category:
        return "category"
    return context.page or ""


def relevance_floor(placement: PlacementEntry, context: PageContext) -> float:
    """The least relevance (0..1) a sponsored ad needs here: the placement's own floor, else the page kind's."""
    if placement.relevance_floor is not None:
        return float(placement.relevance_floor)
    return float(dict(ad_settings.RELEVANCE_FLOORS).get(page_kind(context), 0.0))


def page_relevance(snap: Snapshot, context: PageContext, product_categories: tuple[str, ...] = ()) -> np.ndarray:
    """Per campaign: how well it fits the page (its product, category or search), 0 when it does not."""
    rel = np.zeros(len(snap.campaigns))
    if context.query:
        query = context.query.casefold()
        hits: set[int] = set()
        for w in words(query):
            hits |= snap.by_word.get(w, set())
        for length in snap.cjk_lengths:  # CJK keywords: every substring of that length
            for i in range(len(query) - length + 1):
                hits |= snap.cjk_keywords.get(query[i : i + length], set())
        # Chinese writes no spaces: a CJK keyword also matches a query with at least half of its two-character
        # pieces, as "coffee" matches "coffee beans" (咖啡 finds 咖啡豆); one piece across a word boundary of a
        # longer keyword does not (女士洗发水, women's shampoo, does not find 男士洗面奶 through 士洗), nor does one
        # character (红茶, black tea, is not 绿茶)
        shared: dict[str, list[int]] = {}
        for piece in set(cjk_bigrams(query)):
            for kw, total in snap.cjk_pieces.get(piece, ()):
                shared.setdefault(kw, [0, total])[0] += 1
        for kw, (count, total) in shared.items():
            if 2 * count >= total:
                hits |= snap.cjk_keywords.get(kw, set())
        if hits:
            rel[list(hits)] = CONTEXT_QUERY
    for key in {context.category, *product_categories} - {""}:
        cats = snap.by_category.get(key)
        if cats:
            idx = list(cats)
            rel[idx] = np.maximum(rel[idx], CONTEXT_CATEGORY)
    if context.product is not None:
        prods = snap.by_product.get(context.product)
        if prods:
            rel[list(prods)] = CONTEXT_PRODUCT
    return rel
