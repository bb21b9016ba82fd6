"""Copywriter versions: evaluate a fine-tuned copywriter against the base on held-out products, register it,
switch to it only when it is better, switch back.

The evaluation writes ``variants`` completions for every held-out (product, language) pair with each model, as
the creative studio would (each model with its own prompt: few-shot for the base, zero-shot for a fine-tune),
and judges every headline and description by the advertising rules, grounded in the pair's product text and
keywords. A model is *better* when its share of variants that pass every rule is higher and the paired
bootstrap over products puts the lower end of the difference's interval above zero.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from adengine.conf import settings as ad_settings
from adengine.db import activate_one
from adengine.ml import compliance, grounding, prompts
from adengine.ml.copy_pairs import Pair
from adengine.ml.copywriter import draft, prompt_options
from adengine.models import CopywriterModel


@dataclass
class Written:
    """One model's variants for one held-out pair, with the rules' verdicts."""

    sku: str
    language: str
    product: str
    texts: list[tuple[str, str]] = field(default_factory=list)  # (asset type, text)
    verdicts: list[list[compliance.Verdict]] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return sum(compliance.passed(v) for v in self.verdicts)

    @property
    def grounded(self) -> int:
        """Variants passing every rule whose claims are all grounded (every passing one, by construction)."""
        return sum(compliance.passed(v) and all(x.passed for x in v if x.rule == "grounded") for v in self.verdicts)


def pair_facts(pair: Pair, shop_brands: Sequence[str] = ()) -> grounding.Facts:
    """What a held-out pair states: its product text and keywords (its own brands are those the text names)."""
    own = tuple(b for b in shop_brands if b and b.casefold() in pair.product.casefold())
    items = (("product", pair.product), *(("keyword", k) for k in pair.keywords))
    return grounding.Facts(items=items, brands=own, shop_brands=tuple(shop_brands))


def write(
    writer,
    pairs: Sequence[Pair],
    *,
    variants: int,
    seed: int = 0,
    shop_brands: Sequence[str] = (),
    facts_for: Callable[[Pair], grounding.Facts] | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[Written]:
    """``variants`` completions per pair with ``writer``, parsed and judged as the creative studio does (claims
    grounded in ``facts_for(pair)``, by default the pair's product text and keywords)."""
    cfg = ad_settings.COPYWRITER
    template_set = prompts.templates(ad_settings.PROMPT_TEMPLATES)
    rule_set = compliance.rules(ad_settings.COMPLIANCE)
    out: list[Written] = []
    for i, pair in enumerate(pairs):
        prompt = pair.prompt(template_set, **prompt_options(writer))
        facts = facts_for(pair) if facts_for else pair_facts(pair, shop_brands)
        title = pair.title

        def judge(text: str, asset_type: str, pair=pair, prompt=prompt, facts=facts, title=title) -> list:
            return compliance.check(
                text,
                asset_type=asset_type,
                language=pair.language,
                keywords=pair.keywords,
                product_names=[title],
                prompt=prompt.boilerplate,
                rule_set=rule_set,
                facts=facts,
                generated=True,
            )

        drafts, _ = draft(
            writer, prompt, n=variants, seed=seed + 1000 * i, settings=cfg, template_set=template_set, judge=judge
        )
        done = Written(pair.sku, pair.language, pair.product)
        done.texts = [(d.asset_type, d.text) for d in drafts]
        done.verdicts = [d.verdicts for d in drafts]
        out.append(done)
        if progress:
            progress(i + 1)
    return out


def distinct_2(texts: Sequence[str]) -> float:
    """Distinct bigrams over all bigrams (words in English, characters in Chinese) of ``texts``."""
    grams: list[tuple[str, str]] = []
    for text in texts:
        units = list(text.replace(" ", "")) if any("\u4e00" <= ch <= "\u9fff" for ch in text) else text.lower().split()
        grams += list(zip(units, units[1:], strict=False))
    return len(set(grams)) / len(grams) if grams else 0.0


def summary(written: Sequence[Written]) -> dict:
    """Shares of variants passing every rule and with every claim grounded, distinct-2, per language and in all."""

    def figures(rows: Sequence[Written]) -> dict:
        total = sum(len(w.verdicts) for w in rows)
        passed = sum(w.passed for w in rows)
        failed: dict[str, int] = {}
        for w in rows:
            for verdicts in w.verdicts:
                for v in verdicts:
                    if not v.passed:
                        failed[v.rule] = failed.get(v.rule, 0) + 1
        return {
            "variants": total,
            "passed": passed,
            "pass_share": passed / total if total else 0.0,
            "grounded_of_passed": sum(w.grounded for w in rows) / passed if passed else None,
            "distinct_2": distinct_2([t for w in rows for _, t in w.texts if t]),
            "failures_by_rule": dict(sorted(failed.items(), key=lambda kv: -kv[1])),
        }

    languages = sorted({w.language for w in written})
    return {
        "all": figures(written),
        **{lang: figures([w for w in written if w.language == lang]) for lang in languages},
    }


def compare(base: Sequence[Written], candidate: Sequence[Written], *, confidence: float = 0.9, seed: int = 0) -> dict:
    """Paired bootstrap over held-out pairs of the candidate's minus the base's share of variants passing."""
    diffs = [
        c.passed / max(len(c.verdicts), 1) - b.passed / max(len(b.verdicts), 1)
        for b, c in zip(base, candidate, strict=True)
    ]
    if not diffs:
        return {"difference": 0.0, "low": 0.0, "high": 0.0, "better": False, "pairs": 0}
    rng = random.Random(seed)
    means = sorted(sum(rng.choice(diffs) for _ in diffs) / len(diffs) for _ in range(2000))
    tail = (1 - confidence) / 2
    low, high = means[int(tail * len(means))], means[min(len(means) - 1, int((1 - tail) * len(means)))]
    return {
        "difference": sum(diffs) / len(diffs),
        "low": low,
        "high": high,
        "confidence": confidence,
        "better": low > 0,
        "pairs": len(diffs),
    }


def register(*, version: str, path: str, base: str, metrics: dict, decision: str) -> CopywriterModel:
    """Record a fine-tuned copywriter (inactive)."""
    return CopywriterModel.objects.create(version=version, path=path, base=base, metrics=metrics, decision=decision)


def set_active(*, version: str | None) -> CopywriterModel | None:
    """Make ``version`` the copywriter in use (None: back to the configured base model)."""
    return activate_one(CopywriterModel, version)


def active(base: str) -> CopywriterModel | None:
    """The active fine-tune of ``base`` (the configured model), if any."""
    return CopywriterModel.objects.filter(is_active=True, base=base).first()


def timed(fn: Callable[[], list[Written]]) -> tuple[list[Written], float]:
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started
