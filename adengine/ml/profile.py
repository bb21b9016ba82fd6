"""From behaviour to text and weights (the "data preprocessing" step). Pure functions, no database.

A shopper's behaviour text lists what they bought, carted, viewed and searched, each item once,
strongest first, where an item's strength is the sum over its events of
``EVENT_WEIGHTS[kind] * 0.5 ** (age_days / RECENCY_HALF_LIFE_DAYS)``::

    bought: Trail running shoe · Nimbus · Sports shoes; Running socks · Nimbus · Sports shoes
    carted: Rain jacket · Alpine · Outdoor
    viewed: Trail running shoe · Nimbus · Sports shoes; Hiking boots · Alpine · Outdoor
    searched: trail shoes; 登山鞋

Lines are ordered by their strongest item; items that would push the text past
``PROFILE_MAX_CHARS`` are dropped weakest first, so the text fits the encoder's window. It holds
product titles, brands, categories and scrubbed search queries only -- never names, e-mail
addresses or other personal data.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

LABELS = {"purchase": "bought", "cart": "carted", "view": "viewed", "search": "searched"}


@dataclass(frozen=True)
class Event:
    """What the preprocessing needs of one behaviour event."""

    kind: str
    occurred_at: dt.datetime
    product_id: object | None = None
    product_label: str = ""
    query: str = ""


def event_weight(
    kind: str, occurred_at: dt.datetime, now: dt.datetime, *, weights: dict[str, float], half_life_days: float
) -> float:
    """Weight of one event: its kind's weight halved every ``half_life_days``."""
    age_days = max((now - occurred_at).total_seconds(), 0.0) / 86400.0
    return float(weights.get(kind, 1.0)) * 0.5 ** (age_days / float(half_life_days))


def item_strengths(
    events: Iterable[Event], now: dt.datetime, *, weights: dict[str, float], half_life_days: float
) -> dict[tuple[str, str], float]:
    """Summed recency weight of each (kind, item text)."""
    strength: dict[tuple[str, str], float] = defaultdict(float)
    for e in events:
        text = e.query if e.kind == "search" else e.product_label
        if not text:
            continue
        strength[(e.kind, text)] += event_weight(
            e.kind, e.occurred_at, now, weights=weights, half_life_days=half_life_days
        )
    return strength


def behaviour_text(
    events: Iterable[Event], now: dt.datetime, *, weights: dict[str, float], half_life_days: float, max_chars: int
) -> str:
    """The recency-weighted behaviour text of one shopper ('' when there is no behaviour)."""
    strength = item_strengths(events, now, weights=weights, half_life_days=half_life_days)
    if not strength:
        return ""
    ranked = sorted(strength.items(), key=lambda kv: (-kv[1], kv[0]))
    kept: dict[str, list[tuple[str, float]]] = defaultdict(list)
    used = 0
    for (kind, text), w in ranked:
        cost = len(text) + (len(LABELS[kind]) + 3 if not kept[kind] else 2)
        if used + cost > max_chars:
            continue  # weaker items that do not fit are dropped
        kept[kind].append((text, w))
        used += cost
    lines = [(items[0][1], kind, items) for kind, items in kept.items() if items]
    lines.sort(key=lambda line: (-line[0], line[1]))
    return "\n".join(f"{LABELS[kind]}: " + "; ".join(t for t, _ in items) for _, kind, items in lines)


def product_weights(
    events: Iterable[Event], now: dt.datetime, *, weights: dict[str, float], half_life_days: float
) -> dict[object, float]:
    """Summed recency weight of each product the shopper touched (for the mean-of-vectors method)."""
    out: dict[object, float] = defaultdict(float)
    for e in events:
        if e.product_id is None:
            continue
        out[e.product_id] += event_weight(e.kind, e.occurred_at, now, weights=weights, half_life_days=half_life_days)
    return dict(out)


def compose_target(product_vectors, text_vector) -> np.ndarray | None:
    """A campaign's target: the unit mean of its promoted products' vectors plus the unit vector of its words,
    normalised (None when it has neither)."""
    parts = []
    if len(product_vectors):
        mean = np.mean(np.asarray(product_vectors, np.float32), axis=0)
        parts.append(mean / max(float(np.linalg.norm(mean)), 1e-9))
    if text_vector is not None:
        parts.append(np.asarray(text_vector, np.float32))
    if not parts:
        return None
    total = np.sum(parts, axis=0)
    return total / max(float(np.linalg.norm(total)), 1e-9)
