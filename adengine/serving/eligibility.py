"""Which campaigns may be shown now: active, in budget after pacing, allowed in the placement, with copy in the
language, and under the shopper's frequency caps (reserved exactly in the shared counters: ``reserve_capped``)."""

from __future__ import annotations

import threading
import time

import numpy as np
from django.db import connection

from adengine import clock
from adengine.conf import settings as ad_settings
from adengine.models import Impression, Shopper
from adengine.services.budgets import daily_plan

from . import counters
from .snapshot import PlacementEntry, Snapshot


def eligible(snap: Snapshot, placement: PlacementEntry, lang: str, default_lang: str) -> np.ndarray:
    """Active now, in budget after pacing, allowed in the placement, with copy in the language.

    Depends on the clock and on spend only, so it is kept per placement and language for up to a second
    (and until spend is re-read): a page view does not recompute it for every campaign.
    """
    key = (placement.id, lang)
    now = time.time()
    cached = snap.eligible_cache.get(key)
    if cached is not None and cached[0] == snap.spend_at and now - cached[1] < 1.0:
        return cached[2]
    ok = snap.placement_mask[placement.id].copy()
    ok &= ~(snap.starts_at > now)  # nan compares False: no start or end date
    ok &= ~(snap.ends_at <= now)
    sponsored = ~snap.house
    ok &= ~sponsored | (snap.spent + snap.unit_price <= snap.total_budget + 1e-9)
    plan = daily_plan(snap.daily_budget)
    paced = np.isnan(snap.daily_budget) | (snap.spent_today + snap.unit_price <= plan + 1e-9)
    ok &= ~sponsored | paced
    none = np.zeros(len(snap.campaigns), bool)
    ok &= snap.has_copy.get(lang, none) | snap.has_copy.get(default_lang, none)
    ok.flags.writeable = False  # shared between requests
    snap.eligible_cache[key] = (snap.spend_at, now, ok)
    return ok


class Seen(dict):
    """campaign id -> the shopper's impressions today, with what the engine derived from them (``derived``) and the
    campaigns counted since (``changed``), so that a decision updates its repeat decay instead of recomputing it."""

    __slots__ = ("derived", "changed")

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.derived = None
        self.changed: list[int] = []

    def note(self, campaign_ids) -> None:
        """Record campaigns whose counts changed (past a few thousand, what was derived is dropped instead)."""
        if self.derived is None:
            return
        self.changed.extend(campaign_ids)
        if len(self.changed) > 4096:
            self.derived = None
            self.changed.clear()


class SeenToday:
    """Per process: shopper -> impressions per campaign today, re-read now and then.

    A read takes the larger of two counts per campaign: the impression log's (every impression written so far)
    and the shared counters' (every capped impression reserved by any process, written or not). Between reads the
    process counts what it served itself. It decides which campaigns to pass over early (so that a slate is not
    spent on a campaign whose cap is reached) and how much to damp repeats; the cap itself is enforced by the
    reservation (``counters.reserve``), which is exact.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: dict[int, tuple[object, float, Seen]] = {}

    def get(self, shopper_id: int) -> Seen:
        today = clock.today()
        now = time.monotonic()
        with self.lock:
            entry = self.entries.get(shopper_id)
        if entry is not None and entry[0] == today and now - entry[1] < float(ad_settings.SERVING_CAP_CACHE_SECONDS):
            return entry[2]
        seen = _read_seen(shopper_id, today)
        with self.lock:
            if len(self.entries) > 100_000:
                self.entries.clear()
            self.entries[shopper_id] = (today, now, seen)
        return seen

    def add(self, shopper_id: int, campaign_ids: list[int]) -> None:
        with self.lock:
            entry = self.entries.get(shopper_id)
            if entry is not None:
                for cid in campaign_ids:
                    entry[2][cid] = entry[2].get(cid, 0) + 1
                entry[2].note(campaign_ids)

    def at_least(self, shopper_id: int, counts: dict[int, int]) -> None:
        """Raise the cached counts to at least ``counts`` (another process took what a cap allowed)."""
        with self.lock:
            entry = self.entries.get(shopper_id)
            if entry is not None:
                for cid, n in counts.items():
                    entry[2][cid] = max(entry[2].get(cid, 0), n)
                entry[2].note(counts)

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()


def _read_seen(shopper_id: int, today) -> Seen:
    """campaign id -> the shopper's impressions today: the log's count or the shared counters', the larger.

    When the counters are SQL (``seen_query``), both are read in one statement: one round trip per cache miss."""
    backend = counters.counters()
    sql = (
        f"SELECT campaign_id, count(*) AS n FROM {Impression._meta.db_table} "
        "WHERE shopper_id = %s AND served_at >= %s GROUP BY campaign_id"
    )
    params: list = [shopper_id, clock.midnight()]
    shared = backend.seen_query(shopper_id, today)
    if shared is not None:
        sql = f"SELECT campaign_id, max(n) FROM ({sql} UNION ALL {shared[0]}) AS s GROUP BY campaign_id"
        params += shared[1]
    with connection.cursor() as cur:
        cur.execute(sql, params)
        seen = Seen(cur.fetchall())
    if shared is None:
        for cid, n in backend.seen(shopper_id, today).items():
            seen[cid] = max(seen.get(cid, 0), n)
    return seen


def capped(snap: Snapshot, seen_today: SeenToday, shopper: Shopper | None, candidates: np.ndarray) -> np.ndarray:
    """Which candidate campaigns the shopper has already seen today as often as their cap allows."""
    capped = np.zeros(len(candidates), bool)
    if shopper is None or shopper.pk is None or not np.any(snap.frequency_cap[candidates] > 0):
        return capped
    seen = seen_today.get(shopper.pk)
    if seen:
        for j, ci in enumerate(candidates):
            cap = snap.frequency_cap[ci]
            if cap > 0 and seen.get(snap.campaigns[ci].id, 0) >= cap:
                capped[j] = True
    return capped


def reserve_capped(snap: Snapshot, seen_today: SeenToday, shopper_id: int, slates: list) -> bool:
    """Reserve the capped ads of a decision's slates in the shared counters (``slates``: [(entries, ...)], an
    entry's first field its campaign's index). True when all were granted; otherwise nothing stays reserved, this
    process's count of the refused campaigns is raised to their caps, and the decision must choose again."""
    caps = {
        snap.campaigns[e[0]].id: int(snap.frequency_cap[e[0]])
        for entries, *_ in slates
        for e in entries
        if snap.frequency_cap[e[0]] > 0
    }
    if not caps:
        return True
    granted = counters.reserve(shopper_id, caps)
    if len(granted) == len(caps):
        return True
    counters.release(shopper_id, list(granted))
    seen_today.at_least(shopper_id, {c: n for c, n in caps.items() if c not in granted})
    return False
