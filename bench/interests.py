"""Interest-vector benchmarks on the loaded shop data (run after `make demo` has loaded it).

1. Encoder pipeline: behaviour text -> stored vector (read events, build texts, encode, write) for
   the same shoppers, against the raw ``SentenceTransformer.encode`` of the same texts, one run.
2. Incremental refresh with 1 % of shoppers changed, against a full refresh.

    python -m shop.embedded run -- .venv/bin/python bench/interests.py [--shoppers 256]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")

import django  # noqa: E402

django.setup()

from django.test import override_settings  # noqa: E402
from django.utils import timezone  # noqa: E402

from adengine.conf import settings as ad_settings  # noqa: E402
from adengine.ml import profile  # noqa: E402
from adengine.ml.encoder import get_encoder  # noqa: E402
from adengine.models import Shopper  # noqa: E402
from adengine.selectors.shoppers import recent_events  # noqa: E402
from adengine.services import interests  # noqa: E402


def texts_for(ids: list[int]) -> list[str]:
    events = recent_events(shopper_ids=ids, limit_per_shopper=ad_settings.PROFILE_MAX_EVENTS)
    labels = interests.product_labels({e.product_id for evs in events.values() for e in evs})
    now = timezone.now()
    out = []
    for sid in ids:
        text = profile.behaviour_text(
            interests.to_profile_events(events[sid], labels),
            now,
            weights=ad_settings.EVENT_WEIGHTS,
            half_life_days=ad_settings.RECENCY_HALF_LIFE_DAYS,
            max_chars=ad_settings.PROFILE_MAX_CHARS,
        )
        if text:
            out.append(text)
    return out


def pipeline_vs_raw(n: int, seed: int) -> dict:
    encoder = get_encoder()
    ids = sorted(Shopper.objects.filter(personalisation=True, last_event_at__isnull=False).values_list("pk", flat=True))
    ids = sorted(random.Random(seed).sample(ids, min(n, len(ids))))
    texts = texts_for(ids)
    encoder.encode_queries(texts[:8])  # warm-up
    with override_settings(ADENGINE={**django.conf.settings.ADENGINE, "INTEREST_METHOD": "text"}):
        interests.refresh_interests(encoder=encoder)  # nothing else stale
        Shopper.objects.filter(pk__in=ids).update(interest_source_at=None)
        t = time.perf_counter()
        result = interests.refresh_interests(encoder=encoder)
        pipeline = time.perf_counter() - t
    t = time.perf_counter()
    encoder.model.encode(
        [encoder.query_prefix + x for x in texts],
        batch_size=encoder.batch_size,
        normalize_embeddings=True,
        show_progress_bar=False,
    )
    raw = time.perf_counter() - t
    return {
        "texts": len(texts),
        "pipeline_s": pipeline,
        "raw_s": raw,
        "pipeline_per_s": result["refreshed"] / pipeline,
        "raw_per_s": len(texts) / raw,
        "ratio": (result["refreshed"] / pipeline) / (len(texts) / raw),
    }


def incremental_vs_full(seed: int) -> dict:
    encoder = get_encoder()
    interests.mark_all_stale()
    t = time.perf_counter()
    full = interests.refresh_interests(encoder=encoder)
    full_s = time.perf_counter() - t
    ids = list(Shopper.objects.filter(personalisation=True, last_event_at__isnull=False).values_list("pk", flat=True))
    changed = random.Random(seed).sample(ids, max(1, len(ids) // 100))
    Shopper.objects.filter(pk__in=changed).update(last_event_at=timezone.now())
    t = time.perf_counter()
    inc = interests.refresh_interests(encoder=encoder)
    inc_s = time.perf_counter() - t
    return {
        "shoppers": full["refreshed"] + full["cleared"],
        "full_s": full_s,
        "changed": len(changed),
        "incremental_refreshed": inc["refreshed"],
        "incremental_s": inc_s,
        "ratio": inc_s / full_s,
        "method": ad_settings.INTEREST_METHOD,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shoppers", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    a = pipeline_vs_raw(args.shoppers, args.seed)
    print(
        f"encoder pipeline: {a['pipeline_per_s']:.1f} shoppers/s (text->stored vector) vs raw encode "
        f"{a['raw_per_s']:.1f} texts/s on the same {a['texts']} texts: ratio {a['ratio']:.2f}",
        flush=True,
    )
    b = incremental_vs_full(args.seed)
    print(
        f"refresh ({b['method']}): full {b['shoppers']} shoppers in {b['full_s']:.1f} s; "
        f"incremental with {b['changed']} changed ({b['incremental_refreshed']} re-embedded) in "
        f"{b['incremental_s']:.2f} s = {100 * b['ratio']:.1f} % of full",
        flush=True,
    )
    print(json.dumps({"pipeline": a, "refresh": b}))


if __name__ == "__main__":
    main()
