"""Join the blind rubric scores back to the models and summarise (see RUBRIC.md).

python docs/copy_review/summarise.py --blind   # write review_blind.jsonl from variants.jsonl
python docs/copy_review/summarise.py           # usable share per model and language, from scores.jsonl
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
CRITERIA = ("fluent", "relevant", "persuasive", "compliant")


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def key(row: dict) -> str:
    raw = f"{row['model']}|{row['sku']}|{row['language']}|{row['asset_type']}|{row['text']}"
    return hashlib.sha256(raw.encode()).hexdigest()[:12]


def usable(score: dict) -> bool:
    values = [int(score[c]) for c in CRITERIA]
    return min(values) >= 1 and sum(values) >= 6


def blind(products: dict[str, dict]) -> None:
    rows = [r for r in read(HERE / "variants.jsonl") if r["passes_rules"]]
    seen, out = set(), []
    for r in rows:
        k = key(r)
        if k in seen:
            continue
        seen.add(k)
        out.append(
            {
                "id": k,
                "language": r["language"],
                "product": r.get("product") or products[r["sku"]][r["language"]],
                "asset_type": r["asset_type"],
                "text": r["text"],
            }
        )
    random.Random(0).shuffle(out)
    with (HERE / "review_blind.jsonl").open("w", encoding="utf-8") as fh:
        for r in out:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"{len(out)} assets to review -> {HERE / 'review_blind.jsonl'}")


def summarise() -> dict:
    rows = read(HERE / "variants.jsonl")
    scores = {s["id"]: s for path in sorted(HERE.glob("scores*.jsonl")) for s in read(path)}
    table: dict[tuple[str, str], dict] = defaultdict(
        lambda: {"passed": 0, "scored": 0, "usable": 0, **{c: 0 for c in CRITERIA}}
    )
    for r in rows:
        if not r["passes_rules"]:
            continue
        for group in ((r["model"], r["language"]), (r["model"], "all")):
            t = table[group]
            t["passed"] += 1
            s = scores.get(key(r))
            if s is None:
                continue
            t["scored"] += 1
            t["usable"] += usable(s)
            for c in CRITERIA:
                t[c] += int(s[c])
    out = {}
    for (model, language), t in sorted(table.items()):
        n = max(t["scored"], 1)
        out[f"{model}/{language}"] = {
            "passed": t["passed"],
            "scored": t["scored"],
            "usable": t["usable"],
            "usable_share": t["usable"] / n,
            **{c: round(t[c] / n, 2) for c in CRITERIA},
        }
        print(
            f"{model:>10} {language:>3}: {t['usable']}/{t['scored']} usable ({t['usable'] / n:.0%}); "
            + ", ".join(f"{c} {t[c] / n:.2f}" for c in CRITERIA)
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blind", action="store_true")
    args = parser.parse_args()
    if args.blind:
        import sys

        sys.path.insert(0, str(HERE.parent.parent))
        from adengine.ml.copy_pairs import product_text
        from fixtures.demo_data import build_catalog

        products = {
            p.product_id: {
                lang: product_text(p.row[f"title_{lang}"], p.row[f"description_{lang}"]) for lang in ("en", "zh")
            }
            for p in build_catalog(random.Random(7))
        }
        blind(products)
    else:
        print(json.dumps(summarise()))


if __name__ == "__main__":
    main()
