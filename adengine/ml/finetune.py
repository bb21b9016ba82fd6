"""Fine-tune the encoder on the shop's own behaviour (contrastive, CPU), without seeing the evaluation.

Pairs are mined under the evaluation protocol of ``adengine.ml.protocol`` (the same split that
``selectors.evaluation.evaluate`` uses), so that a before/after comparison is fair:

- only *training shoppers* (whose last order falls before the cut-off) give pairs; the test
  shoppers are never trained on, not even their behaviour before the cut-off;
- only behaviour *before the cut-off* is read.

Kinds of pair:

- *next purchase*: the behaviour text before a purchase (as a query) -> the bought product's text
  (as a passage);
- *co-purchase*: ``bought: <product A>`` -> product B's text, for two products in one order.

Each pair may carry a *hard negative*: a popular product (by buyers before the cut-off) that the
shopper never bought, so the model learns more than "recommend what everyone buys". The loss is
sentence-transformers' ``MultipleNegativesRankingLoss`` (in-batch negatives plus the hard ones).
Word embeddings and the lower layers stay frozen, which keeps a CPU run to minutes and protects the
multilingual vocabulary from drifting on one shop's words. The learning rate warms up, then decays
linearly to a floor above zero, counted on the batches actually run.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.utils import timezone

from adengine.adapters import get_adapter
from adengine.conf import settings as ad_settings
from adengine.ml import profile, protocol
from adengine.ml.encoder import Encoder, models_dir
from adengine.models import BehaviourEvent

log = logging.getLogger(__name__)

NEGATIVE_POOL = 50  # hard negatives are drawn from this many of the most bought products


@dataclass(frozen=True)
class Pair:
    """One training example; ``shopper`` and ``at`` (epoch seconds of the purchase) say where it came from."""

    query: str
    passage: str
    kind: str
    shopper: int
    at: float
    negative: str | None = None


@dataclass
class Mined:
    """Training pairs and the split they respect."""

    pairs: list[Pair]
    cutoff: float
    test_shoppers: set[int]

    def summary(self) -> dict:
        kinds: dict[str, int] = defaultdict(int)
        for p in self.pairs:
            kinds[p.kind] += 1
        return {
            "pairs": len(self.pairs),
            "kinds": dict(kinds),
            "with_negative": sum(1 for p in self.pairs if p.negative),
            "training_shoppers": len({p.shopper for p in self.pairs}),
            "test_shoppers": len(self.test_shoppers),
            "cutoff": dt.datetime.fromtimestamp(self.cutoff, dt.UTC).isoformat(),
        }


def mine_pairs(
    *,
    test_share: float = 0.25,
    seed: int = 0,
    max_pairs: int | None = None,
    hard_negatives: bool = True,
    co_purchase: bool = True,
) -> Mined:
    """Pairs from the training shoppers' behaviour before the protocol's cut-off (see the module docstring)."""
    from adengine.selectors.evaluation import load_log
    from adengine.services.interests import product_labels, to_profile_events

    loaded = load_log()
    lg = loaded.log
    sp = protocol.split(lg, test_share=test_share)
    test = {u for u, (t, _) in protocol.last_orders(lg).items() if t >= sp.cutoff}
    usable = np.flatnonzero(sp.train & ~np.isin(lg.user, list(test)))  # oldest first, as load_log orders them
    adapter = get_adapter()
    passages = {p.pk: adapter.product_text(p) for p in adapter.products().filter(pk__in=loaded.catalog)}
    labels = product_labels(loaded.catalog)
    pool = _negative_pool(lg, usable, loaded.catalog, passages)
    rng = random.Random(seed)
    by_user: dict[int, list[int]] = defaultdict(list)
    for j in usable:
        by_user[int(lg.user[j])].append(int(j))
    pairs: list[Pair] = []
    for sid, positions in by_user.items():
        bought = {loaded.products[j] for j in positions if lg.kind[j] == protocol.PURCHASE}
        orders: dict[int, list[int]] = defaultdict(list)
        for i, j in enumerate(positions):
            pid = loaded.products[j]
            if lg.kind[j] != protocol.PURCHASE or pid not in passages:
                continue
            orders[int(lg.order[j])].append(j)
            at = loaded.times[j]
            window = positions[max(0, i - int(ad_settings.PROFILE_MAX_EVENTS)) : i]
            before = [_event(loaded, x) for x in window if loaded.times[x] < at]
            text = profile.behaviour_text(
                to_profile_events(before, labels),
                at,
                weights=ad_settings.EVENT_WEIGHTS,
                half_life_days=ad_settings.RECENCY_HALF_LIFE_DAYS,
                max_chars=ad_settings.PROFILE_MAX_CHARS,
            )
            if text:
                negative = _negative(pool, bought, passages[pid], rng) if hard_negatives else None
                pairs.append(Pair(text, passages[pid], "next-purchase", sid, float(lg.time[j]), negative))
        if not co_purchase:
            continue
        for lines in orders.values():
            for a in lines:
                for b in lines:
                    pa, pb = loaded.products[a], loaded.products[b]
                    if pa != pb and pa in labels:
                        negative = _negative(pool, bought, passages[pb], rng) if hard_negatives else None
                        pairs.append(
                            Pair(f"bought: {labels[pa]}", passages[pb], "co-purchase", sid, float(lg.time[b]), negative)
                        )
    rng.shuffle(pairs)
    if max_pairs is not None:
        pairs = pairs[:max_pairs]
    return Mined(pairs=pairs, cutoff=sp.cutoff, test_shoppers=test)


def _event(loaded, j: int) -> BehaviourEvent:
    return BehaviourEvent(
        kind=loaded.kinds[j], product_id=loaded.products[j], query=loaded.queries[j], occurred_at=loaded.times[j]
    )


def _negative_pool(lg: protocol.EventLog, usable: np.ndarray, catalog: list, passages: dict) -> list[tuple]:
    """The most bought products (distinct buyers among the usable events): (pk, text, buyers)."""
    buys = usable[(lg.kind[usable] == protocol.PURCHASE) & (lg.item[usable] >= 0)]
    if not len(buys):
        return []
    pairs = np.unique(np.stack([lg.user[buys], lg.item[buys]]), axis=1)
    buyers = np.bincount(pairs[1], minlength=lg.n_items)
    top = [i for i in np.argsort(-buyers, kind="stable")[:NEGATIVE_POOL] if buyers[i] > 0]
    return [(catalog[i], passages[catalog[i]], float(buyers[i])) for i in top if catalog[i] in passages]


def _negative(pool: list[tuple], bought: set, positive: str, rng: random.Random) -> str | None:
    """A popular product the shopper never bought (drawn by popularity), or None."""
    options = [(text, w) for pk, text, w in pool if pk not in bought and text != positive]
    if not options:
        return None
    return rng.choices([t for t, _ in options], weights=[w for _, w in options])[0]


def plan_batches(pairs: list[Pair], *, batch_size: int, epochs: int = 1, seed: int = 0) -> list[list[Pair]]:
    """Every batch that training will run, shuffled per epoch, built before training starts.

    A pair whose positive is already in the batch (as a positive or as another pair's negative),
    or whose negative is another pair's positive, would be a false negative there: it waits for
    the next batch instead of being dropped. A trailing batch of one is dropped (no negatives).
    """
    if batch_size < 2:
        raise ValueError("batch_size must be at least 2: the other pairs of a batch are the negatives")
    rng = random.Random(seed)
    plan: list[list[Pair]] = []
    for _ in range(epochs):
        waiting = list(pairs)
        rng.shuffle(waiting)
        while waiting:
            batch, positives, negatives, later = [], set(), set(), []
            for p in waiting:
                clash = p.passage in positives or p.passage in negatives or (p.negative in positives)
                if clash or len(batch) == batch_size:
                    later.append(p)
                    continue
                batch.append(p)
                positives.add(p.passage)
                if p.negative:
                    negatives.add(p.negative)
            if len(batch) > 1:
                plan.append(batch)
            waiting = later if len(batch) > 1 else []  # nothing fits together any more
    return plan


def lr_factor(step: int, *, total: int, warmup: int, floor: float) -> float:
    """Multiplier of the learning rate at ``step`` (0-based): linear warm-up, then linear decay to ``floor`` > 0."""
    if step < warmup:
        return (step + 1) / warmup
    decay = max(1, total - warmup)
    return max(floor, 1.0 - (1.0 - floor) * (step - warmup + 1) / decay)


def train(
    *,
    encoder: Encoder,
    batches: list[list[Pair]],
    lr: float = 3e-5,
    warmup_share: float = 0.1,
    final_lr_share: float = 0.1,
    trainable_layers: int = 4,
    max_length: int = 128,
    seed: int = 0,
    progress: Callable[[int, float], None] | None = None,
) -> dict:
    """Fine-tune ``encoder.model`` in place on the planned ``batches``; returns training statistics."""
    import torch
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    if not 0 < final_lr_share <= 1:
        raise ValueError("final_lr_share must be in (0, 1]: the schedule ends above zero")
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
    total = len(batches)  # counted on the batches that will run, not on the pairs
    warmup = max(1, round(total * warmup_share))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: lr_factor(s, total=total, warmup=warmup, floor=final_lr_share)
    )
    model.train()
    losses, rates = [], []
    for batch in batches:
        columns = [[encoder.query_prefix + p.query for p in batch], [encoder.passage_prefix + p.passage for p in batch]]
        negatives = [p.negative for p in batch if p.negative]
        if len(negatives) == len(batch):  # the loss takes a negative for every anchor or none
            columns.append([encoder.passage_prefix + n for n in negatives])
        loss = loss_fn([model.preprocess(c) for c in columns], torch.arange(len(batch)))
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        rates.append(optimiser.param_groups[0]["lr"])
        optimiser.step()
        schedule.step()
        losses.append(loss.detach().item())
        if progress:
            progress(len(losses), losses[-1])
    model.eval()
    return {
        "steps": len(losses),
        "planned_steps": total,
        "warmup_steps": warmup,
        "pairs": sum(len(b) for b in batches),
        "lr_peak": max(rates) if rates else None,
        "lr_last": rates[-1] if rates else None,
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


SIGNIFICANCE_RULE = "one-sided paired bootstrap on the blend's per-shopper HR@10 hits, p < alpha"


def compare(before: dict, after: dict, *, alpha: float = 0.05, seed: int = 0) -> dict:
    """Paired comparison of two ``evaluate`` results on the same shoppers: the blend and the content part alone."""
    out: dict = {"rule": SIGNIFICANCE_RULE, "alpha": alpha}
    for name, key in (("blend", "_hits"), ("content", "_content_hits")):
        users = sorted(set(before[key]) & set(after[key]))
        out[name] = protocol.paired_comparison(
            np.array([before[key][u] for u in users]), np.array([after[key][u] for u in users]), seed=seed
        )
        out[name]["users"] = len(users)
    out["significant"] = bool(out["blend"]["diff"] > 0 and out["blend"]["p_bootstrap"] < alpha)
    return out
