"""Offline evaluation of interest vectors: hold out each shopper's last purchase, retrieve, score.

For every consenting shopper with a purchase and some behaviour before it, the products of their
last order are held out; an interest vector is built from the behaviour before that order (as of
that moment), the 10 nearest products are retrieved from pgvector's HNSW index, and hit rate and
NDCG at 10 are computed. Two baselines are measured in the same run: global popularity (purchase
counts without the held-out orders) and random products (seeded).
"""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from adengine.conf import settings as ad_settings
from adengine.ml.encoder import Encoder
from adengine.models import BehaviourEvent, ProductVector
from adengine.selectors.vectors import nearest_products
from adengine.services import interests


@dataclass
class Holdout:
    shopper_id: int
    at: object
    targets: set
    history: list


def holdouts(*, max_users: int | None = None, shopper_ids: set[int] | None = None, seed: int = 0) -> list[Holdout]:
    """The evaluation cases: last order held out, earlier behaviour kept (newest PROFILE_MAX_EVENTS)."""
    purchases = BehaviourEvent.objects.filter(kind="purchase", shopper__personalisation=True)
    if shopper_ids is not None:
        purchases = purchases.filter(shopper_id__in=shopper_ids)
    last: dict[int, object] = {}
    for sid, at in purchases.order_by("shopper_id", "-occurred_at").values_list("shopper_id", "occurred_at"):
        last.setdefault(sid, at)
    ids = sorted(last)
    if max_users is not None and len(ids) > max_users:
        ids = sorted(random.Random(seed).sample(ids, max_users))
    targets: dict[int, set] = defaultdict(set)
    for sid, pid, at in purchases.filter(shopper_id__in=ids).values_list("shopper_id", "product_id", "occurred_at"):
        if at == last[sid]:
            targets[sid].add(pid)
    history: dict[int, list] = defaultdict(list)
    events = BehaviourEvent.objects.filter(shopper_id__in=ids).order_by("shopper_id", "-occurred_at", "-id")
    for e in events.only("shopper_id", "kind", "product_id", "query", "occurred_at").iterator(chunk_size=5000):
        if e.occurred_at < last[e.shopper_id] and len(history[e.shopper_id]) < ad_settings.PROFILE_MAX_EVENTS:
            history[e.shopper_id].append(e)
    return [Holdout(sid, last[sid], targets[sid], history[sid]) for sid in ids if history[sid]]


def _ndcg(ranked: list, targets: set, k: int = 10) -> float:
    dcg = sum(1.0 / math.log2(i + 2) for i, pid in enumerate(ranked[:k]) if pid in targets)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(targets), k)))
    return dcg / ideal if ideal else 0.0


def _score(rankings: dict[int, list], cases: list[Holdout]) -> dict[str, float]:
    hits = [any(p in c.targets for p in rankings.get(c.shopper_id, [])[:10]) for c in cases]
    ndcg = [_ndcg(rankings.get(c.shopper_id, []), c.targets) for c in cases]
    n = max(len(cases), 1)
    return {"hr10": sum(hits) / n, "ndcg10": sum(ndcg) / n}


def catalog_vectors(encoder: Encoder) -> dict:
    """Every advertisable product's vector under ``encoder``, computed in memory (for candidate models)."""
    from adengine.adapters import get_adapter

    adapter = get_adapter()
    products = list(adapter.products())
    vectors = encoder.encode_passages([adapter.product_text(p) for p in products])
    return {p.pk: v for p, v in zip(products, vectors, strict=True)}


def _exact_top(vector: np.ndarray, ids: list, matrix: np.ndarray, k: int = 10) -> list:
    scores = matrix @ vector
    top = np.argsort(-scores)[:k]
    return [ids[i] for i in top]


def evaluate(
    *,
    encoder: Encoder,
    methods: list[str] | None = None,
    text_weights: list[float] | None = None,
    max_users: int | None = None,
    shopper_ids: set[int] | None = None,
    seed: int = 0,
    in_memory: dict | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Hit rate and NDCG at 10 of the configured method (and others asked for), with both baselines.

    Retrieval is pgvector nearest-neighbour search over the stored product vectors, unless
    ``in_memory`` (product pk -> vector, from ``catalog_vectors``) is given: then it is exact search
    over those, which lets a candidate encoder be evaluated before it is switched on.
    """
    say = progress or (lambda msg: None)
    cases = holdouts(max_users=max_users, shopper_ids=shopper_ids, seed=seed)
    if not cases:
        raise ValueError("no shopper has a purchase with behaviour before it: nothing to evaluate")
    if in_memory is None and not ProductVector.objects.exists():
        raise ValueError("no product vectors yet: run `manage.py adengine_embed --products` first")
    configured = ad_settings.INTEREST_METHOD
    methods = list(dict.fromkeys([configured, *(methods or [])]))
    text_weights = list(dict.fromkeys([ad_settings.INTEREST_BLEND_TEXT_WEIGHT, *(text_weights or [])]))
    pids = {e.product_id for c in cases for e in c.history}
    labels = interests.product_labels(pids)
    vecs = in_memory if in_memory is not None else interests.product_vectors(pids)
    by_case = {c.shopper_id: c for c in cases}
    say(f"{len(cases)} shoppers held out")
    histories = {c.shopper_id: interests.to_profile_events(c.history, labels) for c in cases}
    at = {c.shopper_id: c.at for c in cases}
    text = (
        interests.text_vectors(histories, now=at, encoder=encoder)
        if any(m in ("text", "blend") for m in methods)
        else {}
    )
    mean = (
        interests.mean_vectors(histories, now=at, vectors=vecs) if any(m in ("mean", "blend") for m in methods) else {}
    )
    variants: dict[str, dict] = {}
    for m in methods:
        if m == "text":
            variants["text"] = text
        elif m == "mean":
            variants["mean"] = mean
        else:
            for w in text_weights:
                variants[f"blend:{w:g}"] = interests.blend_vectors(text, mean, text_weight=w)
    results = {}
    for name, vectors in variants.items():
        say(f"retrieving for {name}")
        if in_memory is not None:
            ids = list(in_memory)
            matrix = np.stack([in_memory[i] for i in ids])
            rankings = {sid: _exact_top(v, ids, matrix) for sid, v in vectors.items() if sid in by_case}
        else:
            rankings = {sid: nearest_products(v, k=10) for sid, v in vectors.items() if sid in by_case}
        results[name] = _score(rankings, cases)
    # baselines, measured on the same cases
    held = {(c.shopper_id, p) for c in cases for p in c.targets}
    counts = Counter()
    rows = BehaviourEvent.objects.filter(kind="purchase").values_list("shopper_id", "product_id", "occurred_at")
    for sid, pid, at in rows.iterator(chunk_size=5000):
        if not ((sid, pid) in held and by_case.get(sid) is not None and at == by_case[sid].at):
            counts[pid] += 1
    popular = [pid for pid, _ in counts.most_common(10)]
    rng = random.Random(seed)
    catalog = (
        list(in_memory) if in_memory is not None else list(ProductVector.objects.values_list("product_id", flat=True))
    )
    popularity = _score({c.shopper_id: popular for c in cases}, cases)
    randomly = _score({c.shopper_id: rng.sample(catalog, min(10, len(catalog))) for c in cases}, cases)
    main = f"blend:{ad_settings.INTEREST_BLEND_TEXT_WEIGHT:g}" if configured == "blend" else configured
    return {
        "hr10": results[main]["hr10"],
        "ndcg10": results[main]["ndcg10"],
        "hr10_popularity": popularity["hr10"],
        "ndcg10_popularity": popularity["ndcg10"],
        "hr10_random": randomly["hr10"],
        "ndcg10_random": randomly["ndcg10"],
        "users": len(cases),
        "method": main,
        "encoder": encoder.version,
        "methods": results,
    }
