"""Behaviour to text: the documented format, recency weighting, the length cap, no personal data."""

from __future__ import annotations

import datetime as dt

from adengine.ml.profile import Event, behaviour_text, event_weight, product_weights

NOW = dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC)
W = {"search": 1.0, "view": 1.0, "cart": 2.0, "purchase": 3.0}


def ago(days: float) -> dt.datetime:
    return NOW - dt.timedelta(days=days)


def test_format_groups_by_kind_strongest_first():
    events = [
        Event("view", ago(1), 1, "Trail shoe · Running"),
        Event("view", ago(2), 2, "Rain jacket · Outdoor"),
        Event("purchase", ago(1), 1, "Trail shoe · Running"),
        Event("search", ago(0.5), query="登山鞋"),
    ]
    text = behaviour_text(events, NOW, weights=W, half_life_days=14, max_chars=600)
    assert text.splitlines() == [
        "bought: Trail shoe · Running",
        "searched: 登山鞋",
        "viewed: Trail shoe · Running; Rain jacket · Outdoor",
    ]


def test_recent_behaviour_outranks_old_behaviour():
    events = [Event("view", ago(60), 1, "Old interest"), Event("view", ago(1), 2, "New interest")]
    text = behaviour_text(events, NOW, weights=W, half_life_days=14, max_chars=600)
    assert text == "viewed: New interest; Old interest"
    assert event_weight("view", ago(14), NOW, weights=W, half_life_days=14) == 0.5
    assert product_weights(events, NOW, weights=W, half_life_days=14)[2] > 0.9


def test_repeated_items_add_up():
    events = [Event("view", ago(10), 1, "Often seen")] * 3 + [Event("view", ago(1), 2, "Seen once")]
    text = behaviour_text(events, NOW, weights=W, half_life_days=14, max_chars=600)
    assert text == "viewed: Often seen; Seen once"


def test_length_cap_drops_the_weakest_items():
    events = [Event("view", ago(i), i, f"Product number {i:03d}") for i in range(100)]
    text = behaviour_text(events, NOW, weights=W, half_life_days=14, max_chars=200)
    assert len(text) <= 200
    assert "Product number 000" in text and "Product number 099" not in text


def test_empty_history_gives_empty_text():
    assert behaviour_text([], NOW, weights=W, half_life_days=14, max_chars=600) == ""
