"""Advertising rules for ad copy. Pure functions: a text in, every rule's verdict and reason out.

The rule set comes from ``ADENGINE["COMPLIANCE"]`` (defaults below) and applies the same way to
generated and human-written assets. Each rule returns a :class:`Verdict`; an asset passes when
all verdicts pass, and the reasons of the failed ones are stored on it.

Absolute terms follow Article 9(3) of the PRC Advertising Law (国家级, 最高级, 最佳 and the like,
plus the common 最/第一/顶级/极致/首选 family enforced under it) and, for English, the claims
advertising codes single out: "best in the world", "#1", "guaranteed", "cure", "risk-free".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from adengine.text import CJK, contact_details

DEFAULT_RULES: dict = {
    "MAX_LENGTH": {
        "en": {"headline": 30, "description": 90},
        "zh": {"headline": 15, "description": 45},
    },
    "MIN_LENGTH": {"headline": 3, "description": 10},
    "REQUIRE_KEYWORD_OR_PRODUCT": True,
    "ABSOLUTE_TERMS": {
        "zh": [
            "国家级",
            "世界级",
            "最高级",
            "最佳",
            "最优",
            "最好",
            "最低价",
            "最便宜",
            "最",
            "第一",
            "唯一",
            "顶级",
            "极致",
            "首选",
            "万能",
            "绝对",
            "史无前例",
            "100%",
        ],
        "en": [
            "best in the world",
            "world's best",
            "#1",
            "number one",
            "no. 1",
            "guaranteed",
            "guarantee",
            "cure",
            "cures",
            "risk-free",
            "100% effective",
            "miracle",
            "best ever",
            "lowest price ever",
            "clinically proven",
            "heals",
            "treats",
        ],
    },
    "BLOCKLIST": ["free money", "click here", "viagra", "casino", "赌博", "免费领取"],
    "NEAR_DUPLICATE_COSINE": 0.93,
    "PROMPT_ECHO_MIN_CHARS": 32,
}

_HTML = re.compile(r"<[^>]+>|&[a-z]+;|&#\d+;", re.I)


@dataclass(frozen=True)
class Verdict:
    rule: str
    passed: bool
    reason: str = ""


def rules(overrides: dict | None = None) -> dict:
    """The active rule set: defaults updated with ``overrides`` (one level deep)."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in DEFAULT_RULES.items()}
    for key, value in (overrides or {}).items():
        if key not in DEFAULT_RULES:
            raise ValueError(f"unknown compliance rule {key!r}; known: {', '.join(DEFAULT_RULES)}")
        out[key] = {**out[key], **value} if isinstance(out[key], dict) and isinstance(value, dict) else value
    return out


def normalise(text: str) -> str:
    """NFC, whitespace collapsed, trimmed, surrounding quotes removed (Chinese full-width punctuation kept)."""
    text = unicodedata.normalize("NFC", text or "")
    text = re.sub(r"\s+", " ", text).strip()
    return text.strip("\"'“”‘’「」 ").strip()


def display_length(text: str) -> int:
    """Characters as counted for length limits (each Chinese character counts one)."""
    return len(text)


def _contains_term(text: str, term: str, language: str) -> bool:
    if language == "zh" or CJK.search(term) or not term[:1].isalnum():
        return term.lower() in text.lower()
    return re.search(rf"(?<![\w]){re.escape(term)}(?![\w])", text, re.I) is not None


def check(
    text: str,
    *,
    asset_type: str,
    language: str,
    keywords: Iterable[str],
    product_names: Iterable[str],
    prompt: str = "",
    rule_set: dict | None = None,
) -> list[Verdict]:
    """Every rule's verdict on one asset text."""
    r = rule_set or rules()
    shown = text
    text = unicodedata.normalize("NFKC", text)  # matching sees through full-width look-alikes (ｗｗｗ, ＃１)
    out: list[Verdict] = []
    limits = r["MAX_LENGTH"].get(language) or r["MAX_LENGTH"]["en"]
    limit = limits[asset_type]
    n = display_length(shown)
    out.append(
        Verdict(
            "max_length",
            n <= limit,
            f"{n} characters, the limit for a {language} {asset_type} is {limit}" if n > limit else "",
        )
    )
    minimum = r["MIN_LENGTH"][asset_type]
    out.append(Verdict("min_length", n >= minimum, f"only {n} characters" if n < minimum else ""))
    if language == "zh":
        ok = CJK.search(text) is not None
        out.append(Verdict("language", ok, "" if ok else "no Chinese characters in a zh asset"))
    else:
        ok = CJK.search(text) is None and re.search(r"[A-Za-z]", text) is not None
        out.append(Verdict("language", ok, "" if ok else f"not {language} text"))
    if r["REQUIRE_KEYWORD_OR_PRODUCT"] and asset_type == "description":
        terms = [t for t in list(keywords) + list(product_names) if t and t.strip()]
        found = [t for t in terms if _contains_term(text, t.strip(), language)]
        out.append(
            Verdict(
                "keyword",
                bool(found) or not terms,
                "" if found or not terms else "mentions no campaign keyword or product name",
            )
        )
    absolute = [
        t
        for t in r["ABSOLUTE_TERMS"].get(language, []) + (r["ABSOLUTE_TERMS"].get("en", []) if language != "en" else [])
        if _contains_term(text, t, language)
    ]
    out.append(
        Verdict(
            "absolute_claims", not absolute, f"absolute or superlative claim: {', '.join(absolute)}" if absolute else ""
        )
    )
    contact = contact_details(text)
    out.append(Verdict("contact_details", not contact, f"contains {', '.join(contact)}" if contact else ""))
    out.append(Verdict("html", not _HTML.search(text), "contains HTML" if _HTML.search(text) else ""))
    blocked = [w for w in r["BLOCKLIST"] if w.lower() in text.lower()]
    out.append(Verdict("blocklist", not blocked, f"blocked word: {', '.join(blocked)}" if blocked else ""))
    echo = _echoes(text, prompt, r["PROMPT_ECHO_MIN_CHARS"])
    out.append(Verdict("prompt_echo", not echo, f"repeats the prompt: {echo!r}" if echo else ""))
    return out


_FIELD_MARKER = re.compile(
    r"(?i)\b(headline|description|product|keywords?|voice)\s*[:：]|(标题|描述|商品|关键词|风格)\s*[:：]"
)


def _echoes(text: str, prompt: str, min_chars: int) -> str:
    """What the text repeats of the prompt's own text: a field marker, or a long stretch of its instructions
    or worked examples (product facts are fine to repeat; the prompt given here holds no product data)."""
    marker = _FIELD_MARKER.search(text)
    if marker:
        return marker.group(0)
    if not prompt or len(text) < min_chars:
        return ""
    low_prompt = prompt.lower()
    low = text.lower()
    for i in range(0, len(low) - min_chars + 1):
        if low[i : i + min_chars] in low_prompt:
            return text[i : i + min_chars]
    return ""


def passed(verdicts: list[Verdict]) -> bool:
    return all(v.passed for v in verdicts)


def reasons(verdicts: list[Verdict]) -> list[str]:
    return [f"{v.rule}: {v.reason}" for v in verdicts if not v.passed]


def as_json(verdicts: list[Verdict]) -> list[dict]:
    return [asdict(v) for v in verdicts]
