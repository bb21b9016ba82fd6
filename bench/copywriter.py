"""Creative studio benchmarks on the demo campaigns (run after `make demo` loaded them).

1. Generated tokens per second of the full pipeline (prompt, generate, parse, rules, dedupe, rank,
   store) against the raw ``model.generate`` on the same prompts with the same settings, one run.
2. Wall time until a campaign has 8 variants that pass every rule, per language.

    python -m shop.embedded run -- .venv/bin/python bench/copywriter.py [--campaign ID]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")

import django  # noqa: E402

django.setup()

import torch  # noqa: E402

from adengine.conf import settings as ad_settings  # noqa: E402
from adengine.ml import prompts  # noqa: E402
from adengine.ml.copywriter import get_copywriter, prompt_options  # noqa: E402
from adengine.ml.encoder import get_encoder  # noqa: E402
from adengine.models import Campaign, Creative  # noqa: E402
from adengine.services.creatives import campaign_inputs, request_copy, run_request  # noqa: E402


def pipeline_vs_raw(campaign: Campaign, language: str, n: int, seed: int) -> dict:
    writer = get_copywriter()
    cfg = ad_settings.COPYWRITER
    product, keywords, names, _ = campaign_inputs(campaign, language)
    prompt = prompts.build(
        language=language,
        product=product,
        keywords=keywords or names,
        voice=campaign.brand_voice,
        template_set=prompts.templates(ad_settings.PROMPT_TEMPLATES),
        **prompt_options(writer),  # the prompt the pipeline uses with this writer (zero-shot for a fine-tune)
    )
    writer.complete(prompt.text, n=1, max_new_tokens=4, temperature=0.7, top_p=0.95, seed=0)  # warm-up
    get_encoder().encode_passages(["warm-up"])  # a worker loads its models once, before the first request
    # raw: the same prompt, batches and sampling straight through model.generate
    inputs = writer.tokenizer(prompt.text, return_tensors="pt")
    raw_tokens, t = 0, time.perf_counter()
    for start in range(0, n, int(cfg["BATCH_SIZE"])):
        k = min(int(cfg["BATCH_SIZE"]), n - start)
        torch.manual_seed(seed + start)
        with torch.inference_mode():
            out = writer.model.generate(
                **inputs,
                do_sample=True,
                temperature=float(cfg["TEMPERATURE"]),
                top_p=float(cfg["TOP_P"]),
                max_new_tokens=int(cfg["MAX_NEW_TOKENS"]),
                num_return_sequences=k,
                pad_token_id=writer.tokenizer.pad_token_id,
                eos_token_id=writer.stop_ids("\n\n"),
            )
        raw_tokens += int((out[:, inputs["input_ids"].shape[1] :] != writer.tokenizer.pad_token_id).sum())
    raw_s = time.perf_counter() - t
    t = time.perf_counter()
    request = run_request(str(request_copy(campaign=campaign, language=language, n=n, seed=seed, enqueue=False).pk))
    pipe_s = time.perf_counter() - t
    tokens = request.stats["tokens"]
    return {
        "language": language,
        "raw_tokens": raw_tokens,
        "raw_s": raw_s,
        "raw_tps": raw_tokens / raw_s,
        "pipeline_tokens": tokens,
        "pipeline_s": pipe_s,
        "pipeline_tps": tokens / pipe_s,
        "ratio": (tokens / pipe_s) / (raw_tokens / raw_s),
    }


def time_to_eight(campaign: Campaign, language: str, seed: int, budget_s: float = 900) -> dict:
    t = time.perf_counter()
    passed_before = set(
        Creative.objects.filter(campaign=campaign, language=language, passes_rules=True).values_list("pk", flat=True)
    )
    rounds = 0
    while time.perf_counter() - t < budget_s:
        rounds += 1
        run_request(
            str(request_copy(campaign=campaign, language=language, n=8, seed=seed + 1000 * rounds, enqueue=False).pk)
        )
        new = (
            Creative.objects.filter(campaign=campaign, language=language, passes_rules=True)
            .exclude(pk__in=passed_before)
            .count()
        )
        if new >= 8:
            break
    return {"language": language, "compliant": new, "rounds": rounds, "seconds": time.perf_counter() - t}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--campaign", type=int)
    parser.add_argument("--seed", type=int, default=100)
    parser.add_argument("--skip-eight", action="store_true", help="Only the throughput comparison.")
    args = parser.parse_args()
    campaign = Campaign.objects.get(pk=args.campaign) if args.campaign else Campaign.objects.order_by("pk").first()
    results = {"campaign": str(campaign), "model": get_copywriter().name, "pipeline": [], "eight": []}
    for language in ("en", "zh"):
        r = pipeline_vs_raw(campaign, language, 8, args.seed)
        results["pipeline"].append(r)
        print(
            f"[{language}] pipeline {r['pipeline_tps']:.1f} tok/s vs raw generate {r['raw_tps']:.1f} tok/s "
            f"(ratio {r['ratio']:.2f})",
            flush=True,
        )
    for language in () if args.skip_eight else ("en", "zh"):
        r = time_to_eight(campaign, language, args.seed)
        results["eight"].append(r)
        print(
            f"[{language}] {r['compliant']} compliant variants in {r['seconds']:.0f} s ({r['rounds']} requests of 8)",
            flush=True,
        )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
