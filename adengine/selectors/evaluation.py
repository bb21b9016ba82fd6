"""Offline evaluation of shopper understanding, under the protocol of ``adengine.ml.protocol``.

Loads the behaviour log into arrays, splits it in time on each shopper's last order, chooses the
hybrid model's settings on a validation slice *before* the test cut-off (as the scheduled training
does), fits every component on the events before the cut-off, and ranks the catalog for each test
shopper. Reports the blend, each component alone and four baselines (random, global popularity,
recent popularity, bought together) measured on the same shoppers in the same run.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from adengine.adapters import get_adapter
from adengine.conf import settings as ad_settings
from adengine.ml import hybrid, interest_fit, protocol
from adengine.ml.encoder import Encoder
from adengine.ml.hybrid import Params
from adengine.ml.protocol import KIND_CODE, Case, EventLog
from adengine.models import BehaviourEvent
from adengine.services import interests


@dataclass
class LoadedLog:
    """The behaviour log as arrays, with what is needed to rebuild each event's profile form."""

    log: EventLog
    catalog: list  # product pks, in item order
    kinds: list[str]
    products: list  # product pk or None, per event
    queries: list[str]
    times: list[dt.datetime]


def load_log(*, catalog: list | None = None, consenting_only: bool = True) -> LoadedLog:
    """Every behaviour event (of consenting shoppers) as arrays; ``catalog`` defaults to the shop's products."""
    if catalog is None:
        catalog = list(get_adapter().products().order_by("pk").values_list("pk", flat=True))
    item_of = {pk: i for i, pk in enumerate(catalog)}
    qs = BehaviourEvent.objects.all()
    if consenting_only:
        qs = qs.filter(shopper__personalisation=True)
    rows = qs.order_by("occurred_at", "id").values_list(
        "shopper_id", "kind", "product_id", "query", "occurred_at", "dedupe_key"
    )
    users, items, kinds_c, times, orders = [], [], [], [], []
    kinds, products, queries, stamps = [], [], [], []
    order_no: dict[object, int] = {}
    for sid, kind, pid, query, at, key in rows.iterator(chunk_size=10000):
        users.append(sid)
        items.append(item_of.get(pid, -1))
        kinds_c.append(KIND_CODE[kind])
        times.append(at.timestamp())
        if kind == "purchase":
            # the order's own key (purchase keys are "order:<order key>:<product>"), else shopper and time
            okey = key.rsplit(":", 1)[0] if key and key.startswith("order:") else (sid, at)
            orders.append(order_no.setdefault(okey, len(order_no)))
        else:
            orders.append(-1)
        kinds.append(kind)
        products.append(pid)
        queries.append(query)
        stamps.append(at)
    log = EventLog(
        user=np.asarray(users, np.int64),
        item=np.asarray(items, np.int64),
        kind=np.asarray(kinds_c, np.int8),
        time=np.asarray(times, np.float64),
        order=np.asarray(orders, np.int64),
        n_items=len(catalog),
    )
    return LoadedLog(log, catalog, kinds, products, queries, stamps)


def catalog_vectors(encoder: Encoder) -> dict:
    """Every advertisable product's vector under ``encoder``, computed in memory (for candidate models)."""
    adapter = get_adapter()
    products = list(adapter.products())
    vectors = encoder.encode_passages([adapter.product_text(p) for p in products])
    return {p.pk: v for p, v in zip(products, vectors, strict=True)}


def content_function(
    loaded: LoadedLog, *, encoder: Encoder, vectors: dict, labels: dict
) -> Callable[[list[Case]], np.ndarray]:
    """The shoppers' content vectors as of each case, by the configured INTEREST_METHOD."""
    dims = len(next(iter(vectors.values()))) if vectors else int(ad_settings.VECTOR_DIMENSIONS)

    def content(cases: list[Case]) -> np.ndarray:
        histories, at = {}, {}
        for r, c in enumerate(cases):
            events = [
                BehaviourEvent(
                    kind=loaded.kinds[j],
                    product_id=loaded.products[j],
                    query=loaded.queries[j],
                    occurred_at=loaded.times[j],
                )
                for j in c.history[-int(ad_settings.PROFILE_MAX_EVENTS) :]
            ]
            histories[r] = interests.to_profile_events(events, labels)
            at[r] = dt.datetime.fromtimestamp(c.at, dt.UTC)
        found = interests.compute_vectors(
            histories, now=at, encoder=encoder, method=ad_settings.INTEREST_METHOD, vectors=vectors
        )
        out = np.zeros((len(cases), dims), np.float32)
        for r, v in found.items():
            if v is not None:
                out[r] = v
        return out

    return content


def kind_weights() -> np.ndarray:
    """EVENT_WEIGHTS as an array over protocol.KINDS."""
    return np.array([float(ad_settings.EVENT_WEIGHTS.get(k, 1.0)) for k in protocol.KINDS], np.float64)


def build_inputs(*, encoder: Encoder, in_memory: dict | None = None) -> tuple[interest_fit.Inputs, LoadedLog]:
    """The fitting inputs for the shop as it is now (product vectors stored, or ``in_memory``)."""
    if in_memory is None:
        vectors = interests.product_vectors(get_adapter().products().values_list("pk", flat=True))
        if not vectors:
            raise ValueError("no product vectors yet: run `manage.py adengine_embed --products` first")
    else:
        vectors = dict(in_memory)
    loaded = load_log()
    if len(loaded.catalog) < 2:
        raise ValueError(f"the catalog has {len(loaded.catalog)} product(s): ranking needs at least 2")
    dims = len(next(iter(vectors.values())))
    item_content = np.zeros((len(loaded.catalog), dims), np.float32)
    for i, pk in enumerate(loaded.catalog):
        if pk in vectors:
            item_content[i] = vectors[pk]
    labels = interests.product_labels(loaded.catalog)
    inputs = interest_fit.Inputs(
        log=loaded.log,
        item_content=item_content,
        user_content=content_function(loaded, encoder=encoder, vectors=vectors, labels=labels),
        kind_weights=kind_weights(),
    )
    return inputs, loaded


def base_params() -> Params:
    """The settings the search starts from (RECENCY_HALF_LIFE_DAYS among them)."""
    return Params(half_life_days=float(ad_settings.RECENCY_HALF_LIFE_DAYS))


def evaluate(
    *,
    encoder: Encoder,
    max_users: int | None = None,
    shopper_ids: set[int] | None = None,
    seed: int = 0,
    in_memory: dict | None = None,
    include_bought: bool = False,
    test_share: float = 0.25,
    weights: dict[str, float] | None = None,
    progress: Callable[[str], None] | None = None,
    grid_progress: Callable[[int, int], None] | None = None,
) -> dict:
    """The protocol's figures for the hybrid blend (weights chosen before the cut-off), its parts and baselines.

    ``weights`` fixes the blend instead of choosing it (for example a live model's). ``in_memory``
    (product pk -> vector, from ``catalog_vectors``) evaluates a candidate encoder before it is used.
    ``progress`` hears each stage in words, ``grid_progress(done, total)`` the settings tried in choosing the blend.
    """
    say = progress or (lambda msg: None)
    inputs, loaded = build_inputs(encoder=encoder, in_memory=in_memory)
    try:
        sp = protocol.split(inputs.log, test_share=test_share, include_bought=include_bought)
    except protocol.ProtocolError as exc:
        raise ValueError(str(exc)) from exc
    cases = sp.cases
    if shopper_ids is not None:
        cases = [c for c in cases if c.user in shopper_ids]
    if max_users is not None and len(cases) > max_users:
        cases = sorted(random.Random(seed).sample(cases, max_users), key=lambda c: c.user)
    if not cases:
        raise ValueError(
            "no shopper has a purchase with behaviour before it after the cut-off (and a product not bought "
            "before): nothing to evaluate"
        )
    sp.cases = cases
    say(f"{len(cases)} test shoppers; cut-off {dt.datetime.fromtimestamp(sp.cutoff, dt.UTC):%Y-%m-%d %H:%M}")
    base = base_params()
    if weights is None:
        say("choosing the blend on the behaviour before the cut-off")
        choice = interest_fit.choose(
            inputs, before=sp.cutoff, test_share=test_share, include_bought=include_bought, base=base, seed=seed,
            progress=grid_progress,
        )  # fmt: skip
    else:
        choice = interest_fit.Choice(
            params=base, weights=dict(weights), spread={}, validation={}, cases=0, notes=["weights given"]
        )
    say(f"weights {choice.weights}; fitting on the events before the cut-off")
    fitted = interest_fit.fit(inputs, sp.train, sp.cutoff, choice.params, seed=seed)
    parts = interest_fit.parts(inputs, fitted, cases)
    spread = hybrid.spreads(parts, seed=seed)
    mask = protocol.target_mask(cases, inputs.log.n_items)
    n_items = inputs.log.n_items

    def measure(scores: np.ndarray) -> tuple[dict, np.ndarray]:
        return protocol.measure(scores, cases, include_bought=include_bought, mask=mask, seed=seed)

    blend, hits = measure(hybrid.blend_scores(parts, choice.weights, spread))
    components, component_hits = {}, {}
    for name in parts.users:
        components[name], component_hits[name] = measure(parts.scores(name))
    base_figures = {name: measure(s)[0] for name, s in interest_fit.baselines(inputs, sp, seed=seed).items()}
    notes = list(dict.fromkeys(choice.notes + fitted.notes))
    return {
        "hr10": blend["hr10"],
        "hr10_ci_low": blend["hr10_ci"][0],
        "hr10_ci_high": blend["hr10_ci"][1],
        "ndcg10": blend["ndcg10"],
        "mrr": blend["mrr"],
        "coverage": blend["coverage"],
        "hr10_popularity": base_figures["popularity"]["hr10"],
        "ndcg10_popularity": base_figures["popularity"]["ndcg10"],
        "hr10_random": base_figures["random"]["hr10"],
        "ndcg10_random": base_figures["random"]["ndcg10"],
        "users": len(cases),
        "method": "hybrid",
        "encoder": encoder.version,
        "weights": choice.weights,
        "params": choice.params.as_dict(),
        "components": components,
        "baselines": base_figures,
        "validation": {"cases": choice.cases, "figures": choice.validation},
        "protocol": {**sp.protocol, "cutoff": dt.datetime.fromtimestamp(sp.cutoff, dt.UTC).isoformat()},
        "catalog": n_items,
        "notes": notes,
        "_hits": {c.user: float(h) for c, h in zip(cases, hits, strict=True)},
        "_content_hits": {c.user: float(h) for c, h in zip(cases, component_hits["content"], strict=True)},
    }
