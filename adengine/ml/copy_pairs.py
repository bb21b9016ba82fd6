"""Curated product -> ad copy pairs: loading, the product text a prompt shows, and the rules' check of each pair.

A pair is one JSON object per line of a ``.jsonl`` file::

    {"sku": "RUN-000-00", "language": "en", "product": "<title>. <description>",
     "keywords": ["trail running shoes", "grip"], "voice": "energetic",
     "headline": "...", "description": "..."}

``product`` is what the copywriter's prompt shows (``product_text``); the rules ground each pair's claims in
the product's own catalog fields (``facts``), as they do for a campaign that promotes that product.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from adengine.ml import compliance, grounding, prompts

FIELDS = ("sku", "language", "product", "keywords", "voice", "headline", "description")


class PairError(ValueError):
    """A pairs file that cannot be used (names the file and line)."""


@dataclass(frozen=True)
class Pair:
    sku: str
    language: str
    product: str
    keywords: tuple[str, ...]
    voice: str
    headline: str
    description: str

    @property
    def title(self) -> str:
        """The product's title: the product text up to its first sentence's end."""
        return self.product.split("。" if self.language == "zh" else ". ")[0]

    def prompt(self, template_set: dict, **options) -> prompts.Prompt:
        """The copywriter's prompt for this pair's product (``options``: ``prompts.build``'s shots, version)."""
        return prompts.build(
            language=self.language,
            product=self.product,
            keywords=list(self.keywords),
            voice=self.voice,
            template_set=template_set,
            **options,
        )

    def held_out(self, share: float, salt: str = "copywriter") -> bool:
        """Whether this pair's *product* is in the held-out share (by a hash of the SKU: both languages together)."""
        digest = hashlib.sha256(f"{salt}:{self.sku}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64 < share


def load(paths: Iterable[Path]) -> list[Pair]:
    """Every pair in ``paths`` (``.jsonl``); a malformed line raises PairError naming the file and line."""
    out: list[Pair] = []
    for path in paths:
        with Path(path).open(encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise PairError(f"{path}:{number}: not JSON ({exc.msg})") from None
                missing = [f for f in FIELDS if not row.get(f)]
                if missing:
                    raise PairError(f"{path}:{number}: missing {', '.join(missing)}")
                if not isinstance(row["keywords"], list):
                    raise PairError(f"{path}:{number}: keywords must be a list")
                out.append(
                    Pair(
                        sku=str(row["sku"]),
                        language=str(row["language"]),
                        product=str(row["product"]),
                        keywords=tuple(str(k) for k in row["keywords"]),
                        voice=str(row["voice"]),
                        headline=compliance.normalise(row["headline"]),
                        description=compliance.normalise(row["description"]),
                    )
                )
    return out


def product_text(title: str, description: str) -> str:
    """What a prompt shows of a product: its title and its description."""
    title, description = (title or "").strip(), (description or "").strip()
    if not description:
        return title
    joiner = "" if title.endswith((".", "。", "!", "！")) else ("。" if _wide(title) else ". ")
    return f"{title}{joiner}{description}"


def _wide(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def catalog_facts(row: Mapping[str, str], brands: Iterable[str] = ()) -> grounding.Facts:
    """The facts of one demo-catalog row (``fixtures.demo_data`` fields), as a campaign promoting it would have."""
    items = [
        ("product title", row.get("title_en", "")),
        ("product title", row.get("title_zh", "")),
        ("product description", row.get("description_en", "")),
        ("product description", row.get("description_zh", "")),
        ("category", row.get("category_name_en", "")),
        ("category", row.get("category_name_zh", "")),
        ("brand", row.get("brand", "")),
    ]
    return grounding.Facts(
        items=tuple((s, t) for s, t in items if t),
        brands=(row["brand"],) if row.get("brand") else (),
        shop_brands=tuple(sorted(set(brands))),
    )


def verdicts(pair: Pair, facts: grounding.Facts, rule_set: dict | None = None) -> dict[str, list[compliance.Verdict]]:
    """The rules' verdicts on a pair's headline and description, judged as generated copy would be."""
    title = pair.title
    return {
        kind: compliance.check(
            text,
            asset_type=kind,
            language=pair.language,
            keywords=pair.keywords,
            product_names=[title],
            rule_set=rule_set,
            facts=facts,
            generated=True,
        )
        for kind, text in (("headline", pair.headline), ("description", pair.description))
    }
