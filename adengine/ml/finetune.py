"""Fine-tune the encoder on the shop's own behaviour (contrastive, CPU).

Pairs are mined from a training split of the shoppers (held-out shoppers are never trained on):

- *next purchase*: the behaviour text before a purchase (as a query) -> the bought product's text
  (as a passage);
- *co-purchase*: ``bought: <product A>`` -> product B's text, for two products in one order.

The loss is sentence-transformers' ``MultipleNegativesRankingLoss`` (in-batch negatives). Word
embeddings and the lower layers stay frozen, which keeps a CPU run to minutes and protects the
multilingual vocabulary from drifting on one shop's words.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.utils import timezone

from adengine.adapters import get_adapter
from adengine.conf import settings as ad_settings
from adengine.ml import profile
from adengine.ml.encoder import Encoder, models_dir
from adengine.models import BehaviourEvent

log = logging.getLogger(__name__)


def is_held_out(shopper_id: int, *, fraction: float, seed: int) -> bool:
    """Stable split of shoppers: True for the evaluation share."""
    h = hashlib.sha256(f"{seed}:{shopper_id}".encode()).digest()
    return int.from_bytes(h[:4], "big") / 2**32 < fraction


@dataclass(frozen=True)
class Pair:
    query: str
    passage: str
    kind: str


def mine_pairs(
    *, held_out_fraction: float = 0.2, seed: int = 0, max_pairs: int | None = None
) -> tuple[list[Pair], set[int]]:
    """Training pairs from the training shoppers, and the ids of the held-out shoppers."""
    from adengine.services.interests import product_labels, to_profile_events

    adapter = get_adapter()
    events_by: dict[int, list[BehaviourEvent]] = defaultdict(list)
    for e in (
        BehaviourEvent.objects.filter(shopper__personalisation=True)
        .order_by("shopper_id", "occurred_at", "id")
        .iterator(chunk_size=5000)
    ):
        events_by[e.shopper_id].append(e)
    held = {sid for sid in events_by if is_held_out(sid, fraction=held_out_fraction, seed=seed)}
    pids = {e.product_id for evs in events_by.values() for e in evs if e.product_id}
    labels = product_labels(pids)
    passages = {p.pk: adapter.product_text(p) for p in adapter.products().filter(pk__in=pids)}
    pairs: list[Pair] = []
    for sid, evs in events_by.items():
        if sid in held:
            continue
        orders: dict[dt.datetime, list] = defaultdict(list)
        for i, e in enumerate(evs):
            if e.kind != "purchase" or e.product_id not in passages:
                continue
            orders[e.occurred_at].append(e.product_id)
            window = evs[max(0, i - ad_settings.PROFILE_MAX_EVENTS) : i]
            before = to_profile_events([x for x in window if x.occurred_at < e.occurred_at], labels)
            text = profile.behaviour_text(
                before,
                e.occurred_at,
                weights=ad_settings.EVENT_WEIGHTS,
                half_life_days=ad_settings.RECENCY_HALF_LIFE_DAYS,
                max_chars=ad_settings.PROFILE_MAX_CHARS,
            )
            if text:
                pairs.append(Pair(text, passages[e.product_id], "next-purchase"))
        for products in orders.values():
            for a in products:
                for b in products:
                    if a != b and a in labels:
                        pairs.append(Pair(f"bought: {labels[a]}", passages[b], "co-purchase"))
    rng = random.Random(seed)
    rng.shuffle(pairs)
    if max_pairs is not None:
        pairs = pairs[:max_pairs]
    return pairs, held


def _batches(pairs: list[Pair], batch_size: int):
    batch: list[Pair] = []
    seen: set[str] = set()
    for p in pairs:
        if p.passage in seen:  # the same positive twice in a batch would be a false negative
            continue
        batch.append(p)
        seen.add(p.passage)
        if len(batch) == batch_size:
            yield batch
            batch, seen = [], set()
    if len(batch) > 1:
        yield batch


def train(
    *,
    encoder: Encoder,
    pairs: list[Pair],
    epochs: int = 1,
    batch_size: int = 16,
    lr: float = 3e-5,
    trainable_layers: int = 4,
    max_length: int = 128,
    seed: int = 0,
    progress: Callable[[int, float], None] | None = None,
) -> dict:
    """Fine-tune ``encoder.model`` in place on ``pairs``; returns training statistics."""
    import torch
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    torch.manual_seed(seed)
    model = encoder.model
    model.max_seq_length = max_length
    for param in model.parameters():
        param.requires_grad = False
    layers = _encoder_layers(model)
    for layer in layers[-trainable_layers:] if trainable_layers else []:
        for param in layer.parameters():
            param.requires_grad = True
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("nothing to train: trainable_layers must be at least 1")
    loss_fn = MultipleNegativesRankingLoss(model)
    optimiser = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    steps = sum(1 for _ in _batches(pairs, batch_size)) * epochs
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: min(1.0, (s + 1) / max(1, steps // 10)) * max(0.0, 1 - s / max(1, steps))
    )
    model.train()
    done, losses = 0, []
    rng = random.Random(seed)
    for _ in range(epochs):
        order = list(pairs)
        rng.shuffle(order)
        for batch in _batches(order, batch_size):
            queries = model.preprocess([encoder.query_prefix + p.query for p in batch])
            passages = model.preprocess([encoder.passage_prefix + p.passage for p in batch])
            loss = loss_fn([queries, passages], torch.arange(len(batch)))
            optimiser.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimiser.step()
            schedule.step()
            done += 1
            value = loss.detach().item()
            losses.append(value)
            if progress:
                progress(done, value)
    model.eval()
    return {
        "steps": done,
        "pairs": len(pairs),
        "first_loss": losses[0] if losses else None,
        "last_loss": sum(losses[-5:]) / len(losses[-5:]) if losses else None,
    }


def _encoder_layers(model) -> list:
    transformer = model[0].auto_model
    encoder = getattr(transformer, "encoder", None)
    layers = getattr(encoder, "layer", None)
    if layers is None:
        raise ValueError(f"cannot find the transformer layers of {type(transformer).__name__}")
    return list(layers)


def new_version_dir() -> tuple[str, Path]:
    """A fresh version name and its folder under MODELS_DIR."""
    version = "ft-" + timezone.now().strftime("%Y%m%d-%H%M%S")
    return version, models_dir() / version
