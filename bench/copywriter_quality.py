"""Base against fine-tuned copywriter on the 40 held-out demo products (fixtures/copywriter/eval_products.json).

For each product (20 written about in English, 20 in Chinese) each model writes ``--variants`` completions with
its own prompt (few-shot for the base, zero-shot for the fine-tune), as the creative studio would for a campaign
promoting that product alone, with the product type and category as keywords. Every headline and description is
judged by the advertising rules with the product's catalog facts and the shop's brands. Prints, per model and
language, the share of assets passing every rule, the share of those with every claim grounded, distinct-2 and
the failures by rule, and writes every asset to ``--out`` (JSON lines) for the rubric review (docs/copy_review).

    python -m shop.embedded run -- .venv/bin/python bench/copywriter_quality.py --adapter PATH \\
        [--variants 4] [--out docs/copy_review/variants.jsonl]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")

import django  # noqa: E402

django.setup()

from adengine.conf import settings as ad_settings  # noqa: E402
from adengine.ml import compliance, copy_pairs  # noqa: E402
from adengine.ml.copywriter import LocalCopywriter  # noqa: E402
from adengine.services import copywriters  # noqa: E402
from fixtures.demo_data import CATALOG, build_catalog  # noqa: E402


def eval_pairs() -> tuple[list[copy_pairs.Pair], dict[str, dict], list[str]]:
    products = {p.product_id: p for p in build_catalog(random.Random(7))}
    chosen = json.loads((ROOT / "fixtures" / "copywriter" / "eval_products.json").read_text())
    pairs = []
    for language in ("en", "zh"):
        for sku in chosen[language]:
            p = products[sku]
            row = p.row
            category = CATALOG[p.category]
            ptype = category[4][p.ptype][0 if language == "en" else 1]
            pairs.append(
                copy_pairs.Pair(
                    sku=sku,
                    language=language,
                    product=copy_pairs.product_text(row[f"title_{language}"], row[f"description_{language}"]),
                    keywords=(
                        ptype,
                        category[1 if language == "en" else 2].lower() if language == "en" else category[2],
                    ),
                    voice="friendly" if language == "en" else "亲切",
                    headline="-",
                    description="-",
                )
            )
    brands = sorted({p.row["brand"] for p in products.values()})
    return pairs, {sku: p.row for sku, p in products.items()}, brands


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--adapter", type=Path, required=True, help="The fine-tuned copywriter's adapter folder.")
    parser.add_argument("--variants", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "copy_review" / "variants.jsonl")
    args = parser.parse_args()
    pairs, rows, brands = eval_pairs()
    cfg = ad_settings.COPYWRITER
    results = {}
    lines = []
    for name, adapter in (("base", None), ("fine-tuned", args.adapter)):
        writer = LocalCopywriter(
            str(cfg["MODEL"]),
            threads=cfg.get("THREADS"),
            quantize=cfg.get("QUANTIZE"),
            adapter=adapter,
            version=adapter.name if adapter else "",
        )
        started = time.perf_counter()
        written = copywriters.write(
            writer,
            pairs,
            variants=args.variants,
            seed=args.seed,
            facts_for=lambda pair: copy_pairs.catalog_facts(rows[pair.sku], brands),
            progress=lambda n, name=name: print(f"  [{name}] {n}/{len(pairs)}", end="\r", flush=True),
        )
        seconds = time.perf_counter() - started
        results[name] = {**copywriters.summary(written), "seconds": seconds, "model": writer.name}
        for w in written:
            for (asset_type, text), verdicts in zip(w.texts, w.verdicts, strict=True):
                lines.append(
                    {
                        "model": name,
                        "sku": w.sku,
                        "language": w.language,
                        "product": w.product,
                        "asset_type": asset_type,
                        "text": text,
                        "passes_rules": compliance.passed(verdicts),
                        "failed": compliance.reasons(verdicts),
                    }
                )
        for language in ("all", "en", "zh"):
            f = results[name][language]
            print(
                f"[{name}/{language}] {f['passed']}/{f['variants']} pass every rule ({f['pass_share']:.1%}); "
                f"grounded of passing {f['grounded_of_passed']}; distinct-2 {f['distinct_2']:.2f}; "
                f"failures {f['failures_by_rule']}",
                flush=True,
            )
        print(f"[{name}] {seconds:.0f} s", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", encoding="utf-8") as fh:
        for line in lines:
            fh.write(json.dumps(line, ensure_ascii=False) + "\n")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
