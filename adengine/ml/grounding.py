"""Claims in ad copy and the facts that support them. Pure functions: a text and the campaign's facts in, each
claim with its evidence (or none) out.

A claim is what a reader would take as a stated fact: a number (with its unit, a percentage, a rating), a price
or a discount, a certification or a product attribute from ``CLAIM_TERMS`` (SPF, organic, waterproof, stainless
steel, 真丝 ...), or a brand of the shop that is not the campaign's. It is supported when the campaign's facts --
its products' titles, descriptions, brands and categories, its keywords, and the advertiser's own description of
the campaign -- state it; a price or a discount is never accepted from generated copy (the ad shows the live
price), only from a person's copy whose campaign states it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from adengine.text import CJK

# Attributes and certifications that a shopper reads as a promise (lower case; Chinese as written).
CLAIM_TERMS = {
    "en": [
        "spf", "organic", "waterproof", "water-resistant", "stainless steel", "stainless-steel", "leather",
        "genuine leather", "silk", "cashmere", "merino", "wool", "cotton", "bamboo", "vegan", "cruelty-free",
        "hypoallergenic", "dermatologist", "certified", "award-winning", "patented", "handmade", "gluten-free",
        "sugar-free", "non-toxic", "bpa-free", "sunscreen", "sun protection", "anti-aging", "anti-ageing",
        "wireless", "noise-cancelling", "fast charging", "five-star", "5-star",
    ],
    "zh": [
        "防晒", "有机", "防水", "不锈钢", "真皮", "皮革", "真丝", "羊绒", "羊毛", "纯棉", "竹纤维", "纯天然",
        "无添加", "低敏", "认证", "专利", "手工", "无糖", "无麸质", "抗衰", "美白", "无线", "降噪", "快充", "星级",
        "五星", "好评率",
    ],
}  # fmt: skip
# Colours: a colour the product does not come in is a false claim ("a green toy" for a navy one).
COLOUR_TERMS = {
    "en": ["black", "white", "grey", "gray", "navy", "blue", "red", "green", "yellow", "pink", "purple", "orange",
           "brown", "beige", "silver", "gold"],
    "zh": ["黑色", "白色", "灰色", "藏青色", "藏青", "蓝色", "红色", "绿色", "黄色", "粉色", "紫色", "橙色", "棕色",
           "米色", "银色", "金色"],
}  # fmt: skip
NOT_COLOURS = ("口红色", "红色号")  # Chinese words that contain a colour's characters without naming one
_CURRENCY = r"(?:¥|￥|\$|€|£|rmb|cny|yuan|元|块)"
_PRICE = re.compile(
    rf"{_CURRENCY}\s*\d[\d,.]*|\d[\d,.]*\s*{_CURRENCY}|\d+(?:\.\d+)?\s*(?:%|percent)\s*off|\d+(?:\.\d+)?\s*折"
    r"|(?:half price|discount|sale price|on sale|优惠价|特价|打折|折扣|半价|立减|满减)",
    re.I,
)
_NUMBER = re.compile(
    r"\d+(?:[.,]\d+)*\s*(?:%|percent|ml|mah|w|g|kg|cm|mm|m|l|hours?|h|days?|x|毫升|克|小时|天|倍)?", re.I
)


@dataclass(frozen=True)
class Claim:
    kind: str  # "price", "number", "attribute", "brand"
    text: str  # as it appears in the copy
    evidence: str = ""  # which fact supports it ("" when none)

    @property
    def supported(self) -> bool:
        return bool(self.evidence)


@dataclass(frozen=True)
class Facts:
    """What a campaign states: (source, text) pairs, e.g. ("product title", "Lumiere premium serum")."""

    items: tuple[tuple[str, str], ...]
    brands: tuple[str, ...] = ()  # the campaign's own brands (its products' and its advertiser's)
    shop_brands: tuple[str, ...] = ()  # every brand the shop sells: naming another is an unsupported claim

    def find(self, needle: str) -> str:
        """The first fact that contains ``needle`` (case- and width-insensitive): "source: text", or ""."""
        low = _fold(needle)
        if not low:
            return ""
        for source, text in self.items:
            folded = _fold(text)
            if _has(folded, low):
                return f"{source}: {text[:80]}"
        return ""


def _fold(text: str) -> str:
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text or "").casefold()).strip()


def _has(haystack: str, needle: str) -> bool:
    if CJK.search(needle) or not needle[:1].isalnum():
        return needle in haystack
    return re.search(rf"(?<![\w]){re.escape(needle)}(?![\w])", haystack) is not None


def _digits(text: str) -> str:
    return re.sub(r"[^\d.]", "", text.replace(",", "")).strip(".")


def claims(text: str, language: str, facts: Facts, *, generated: bool) -> list[Claim]:
    """Every claim in ``text`` with the fact that supports it (prices and discounts: never, when ``generated``)."""
    folded = _fold(text)
    out: list[Claim] = []
    taken: list[tuple[int, int]] = []
    for m in _PRICE.finditer(folded):
        evidence = "" if generated else (facts.find(m.group(0)) or _number_evidence(m.group(0), facts))
        out.append(Claim("price", m.group(0), evidence))
        taken.append(m.span())
    for m in _NUMBER.finditer(folded):
        if any(a <= m.start() < b for a, b in taken):
            continue
        number = m.group(0).strip()
        out.append(Claim("number", number, facts.find(number) or _number_evidence(number, facts)))
    terms = CLAIM_TERMS.get(language, []) + (CLAIM_TERMS["en"] if language != "en" else [])
    terms += COLOUR_TERMS.get(language, [])
    for word in NOT_COLOURS:  # 口红色号 is "lipstick shades", not "red"
        folded = folded.replace(word, " ")
    for term in sorted(terms, key=len, reverse=True):
        if _has(folded, term) and not any(term in c.text for c in out if c.kind == "attribute"):
            out.append(Claim("attribute", term, facts.find(term)))
    own = {_fold(b) for b in facts.brands}
    for brand in facts.shop_brands:
        b = _fold(brand)
        if b and b not in own and _has(folded, b):
            out.append(Claim("brand", brand, ""))
    return out


def _number_evidence(number: str, facts: Facts) -> str:
    """A fact stating the same number (its digits), e.g. '50' in 'SPF 50' for 'SPF50'."""
    digits = _digits(number)
    if not digits:
        return ""
    for source, text in facts.items:
        if digits in {_digits(n) for n in re.findall(r"\d[\d,.]*", text)}:
            return f"{source}: {text[:80]}"
    return ""


def unsupported(found: Iterable[Claim]) -> list[Claim]:
    return [c for c in found if not c.supported]
