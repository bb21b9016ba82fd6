"""The decision engine: which ads a shopper sees in a placement, logged with their propensities.

The hot path reads the in-memory candidate index (``adengine.serving.index``), the shopper row it is
given, one count of today's impressions when a candidate has a frequency cap, and writes the impressions
in one insert. It never loads a model and never touches the broker.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field

import numpy as np
from django.db import connection
from django.utils import timezone

from adengine.conf import settings as ad_settings
from adengine.models import Impression, Shopper
from adengine.serving import index as serving_index
from adengine.serving.index import CampaignEntry, PlacementEntry, ProductCard, Snapshot, words
from adengine.serving.policy import POLICY_NAME, relevance_factor, thompson_slate

CONTEXT_PRODUCT = 1.0  # relevance of a campaign promoting the product on the page
CONTEXT_CATEGORY = 0.8  # ... targeting the page's category (or promoting a product in it)
CONTEXT_QUERY = 0.9  # ... whose keywords the search query contains


class UnknownPlacement(LookupError):
    """No placement has this key."""


@dataclass(frozen=True)
class PageContext:
    """What the page shows: its type and the product, category or search query on it (not personal)."""

    page: str = ""
    product: object | None = None
    category: str = ""
    query: str = ""


@dataclass
class Ad:
    """One chosen ad, ready to render."""

    impression_id: int
    nonce: uuid.UUID
    campaign_id: int
    advertiser: str
    campaign: str
    headline: str
    description: str
    product: ProductCard | None
    language: str
    position: int
    house: bool
    landing_url: str


@dataclass
class Decision:
    """The ads for one placement view (possibly none)."""

    id: uuid.UUID
    placement: PlacementEntry
    personalised: bool
    ads: list[Ad] = field(default_factory=list)


_local = threading.local()


def _rng() -> np.random.Generator:
    rng = getattr(_local, "rng", None)
    if rng is None:
        rng = _local.rng = np.random.default_rng()
    return rng


def _language(snap: Snapshot, language: str | None) -> str:
    langs = list(ad_settings.LANGUAGES)
    if language:
        lang = language.lower()
        for known in langs:
            if lang == known or lang.startswith(known + "-"):
                return known
    return langs[0]


def _context_relevance(snap: Snapshot, context: PageContext, product_category: str) -> np.ndarray:
    rel = np.zeros(len(snap.campaigns))
    if context.query:
        query = context.query.casefold()
        hits: set[int] = set()
        for w in words(query):
            hits |= snap.by_word.get(w, set())
        for length in snap.cjk_lengths:  # CJK keywords: every substring of that length
            for i in range(len(query) - length + 1):
                hits |= snap.cjk_keywords.get(query[i : i + length], set())
        if hits:
            rel[list(hits)] = CONTEXT_QUERY
    for key in {context.category, product_category} - {""}:
        cats = snap.by_category.get(key)
        if cats:
            idx = list(cats)
            rel[idx] = np.maximum(rel[idx], CONTEXT_CATEGORY)
    if context.product is not None:
        prods = snap.by_product.get(context.product)
        if prods:
            rel[list(prods)] = CONTEXT_PRODUCT
    return rel


def _eligible(snap: Snapshot, placement: PlacementEntry, lang: str, default_lang: str, now: float) -> np.ndarray:
    """Active now, in budget after pacing, allowed in the placement, with copy in the language."""
    ok = snap.placement_mask[placement.id].copy()
    ok &= ~(snap.starts_at > now)  # nan compares False: no start or end date
    ok &= ~(snap.ends_at <= now)
    sponsored = ~snap.house
    ok &= ~sponsored | (snap.spent + snap.unit_price <= snap.total_budget + 1e-9)
    local = timezone.localtime()
    day_share = (local - local.replace(hour=0, minute=0, second=0, microsecond=0)).total_seconds() / 86400.0
    plan = snap.daily_budget * min(1.0, day_share + float(ad_settings.PACING_SLACK))
    paced = np.isnan(snap.daily_budget) | (snap.spent_today + snap.unit_price <= plan + 1e-9)
    ok &= ~sponsored | paced
    none = np.zeros(len(snap.campaigns), bool)
    return ok & (snap.has_copy.get(lang, none) | snap.has_copy.get(default_lang, none))


def _capped(snap: Snapshot, shopper: Shopper | None, candidates: np.ndarray) -> np.ndarray:
    """Which candidate campaigns the shopper has already seen today as often as their cap allows."""
    capped = np.zeros(len(candidates), bool)
    if shopper is None or shopper.pk is None or not np.any(snap.frequency_cap[candidates] > 0):
        return capped
    midnight = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT campaign_id, count(*) FROM {Impression._meta.db_table} "
            "WHERE shopper_id = %s AND served_at >= %s GROUP BY campaign_id",
            [shopper.pk, midnight],
        )
        seen = dict(cur.fetchall())
    if seen:
        for j, ci in enumerate(candidates):
            cap = snap.frequency_cap[ci]
            if cap > 0 and seen.get(snap.campaigns[ci].id, 0) >= cap:
                capped[j] = True
    return capped


def _arms_for(
    snap: Snapshot, campaigns: np.ndarray, lang: str, default_lang: str
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Per competing arm: its language, its index in that language's arrays, its campaign (sorted by campaign).

    A campaign's arms are stored best-first by an optimistic index; the first SERVING_ASSETS_PER_CAMPAIGN
    compete (in the page's language, else the default language).
    """
    per = max(1, int(ad_settings.SERVING_ASSETS_PER_CAMPAIGN))
    langs: list[str] = []
    idx: list[int] = []
    group: list[int] = []
    for ci in np.sort(campaigns).tolist():
        for lg in (lang, default_lang):
            arms = snap.arms.get(lg)
            span = arms.spans.get(ci) if arms is not None else None
            if span:
                end = min(span[1], span[0] + per)
                langs.extend([lg] * (end - span[0]))
                idx.extend(range(span[0], end))
                group.extend([ci] * (end - span[0]))
                break
    return langs, np.array(idx, dtype=np.int64), np.array(group, dtype=np.int64)


def _choose(
    snap: Snapshot,
    candidates: np.ndarray,
    relevance: np.ndarray,
    *,
    lang: str,
    default_lang: str,
    n: int,
) -> list[tuple]:
    """Thompson-sample a slate among the candidate campaigns' arms: [(campaign idx, lang, arm, p, ctr, value)]."""
    if n <= 0 or len(candidates) == 0:
        return []
    langs, idx, group = _arms_for(snap, candidates, lang, default_lang)
    if not langs:
        return []
    alpha = np.empty(len(idx))
    beta = np.empty(len(idx))
    for lg in set(langs):
        mask = np.fromiter((x == lg for x in langs), bool, len(langs)) if len(set(langs)) > 1 else slice(None)
        alpha[mask] = snap.arms[lg].alpha[idx[mask]]
        beta[mask] = snap.arms[lg].beta[idx[mask]]
    weight = snap.value_per_click[group] * relevance_factor(
        relevance[group], float(ad_settings.SERVING_RELEVANCE_WEIGHT)
    )
    slate = thompson_slate(
        _rng(),
        alpha=alpha,
        beta=beta,
        weight=weight,
        group=group,
        n=n,
        epsilon=float(ad_settings.SERVING_EXPLORATION),
        draws=int(ad_settings.SERVING_PROPENSITY_DRAWS),
    )
    return [
        (int(group[a]), langs[a], int(idx[a]), float(p), float(ctr), float(v), slate.explored)
        for a, p, ctr, v in zip(slate.arms, slate.propensities, slate.sampled_ctr, slate.values, strict=True)
    ]


_IMPRESSION_COLUMNS = (
    "nonce, decision_id, placement_id, campaign_id, creative_id, description_id, product_id, shopper_id, language, "
    "position, propensity, predicted_ctr, relevance, value, candidates, personalised, policy, context, landing_url, "
    "served_at"
)
_ROW = "(" + ", ".join(["%s"] * 17 + ["%s::jsonb", "%s", "%s"]) + ")"


def _insert_impressions(rows: list[tuple]) -> list[int]:
    """Write the impressions in one statement (no ORM: this is the hottest write); their ids, in order."""
    sql = (
        f"INSERT INTO {Impression._meta.db_table} ({_IMPRESSION_COLUMNS}) VALUES "
        + ", ".join([_ROW] * len(rows))
        + " RETURNING id"
    )
    with connection.cursor() as cur:
        cur.execute(sql, [value for row in rows for value in row])
        return [r[0] for r in cur.fetchall()]


def _top(values: np.ndarray, mask: np.ndarray, k: int) -> np.ndarray:
    idx = np.flatnonzero(mask)
    if len(idx) > k:
        idx = idx[np.argpartition(-values[idx], k - 1)[:k]]
    return idx


def _product(
    snap: Snapshot, campaign: CampaignEntry, context: PageContext, vector: np.ndarray | None
) -> ProductCard | None:
    if not campaign.products:
        return None
    if context.product is not None and context.product in campaign.products:
        return snap.cards[context.product]
    if vector is not None:
        scored = [(float(snap.product_vectors[p] @ vector), p) for p in campaign.products if p in snap.product_vectors]
        if scored:
            return snap.cards[max(scored, key=lambda t: t[0])[1]]
    return snap.cards[campaign.products[0]]


def decide(
    *,
    placement_key: str,
    shopper: Shopper | None,
    context: PageContext | None = None,
    n: int | None = None,
    language: str | None = None,
    product_category: str = "",
) -> Decision:
    """Choose and log the ads for one view of a placement. Raises UnknownPlacement for an unknown key."""
    snap = serving_index.current()
    placement = snap.placements.get(placement_key)
    if placement is None:
        raise UnknownPlacement(placement_key)
    context = context or PageContext()
    personalised = bool(shopper is not None and shopper.personalisation and shopper.interest_vector is not None)
    decision = Decision(id=uuid.uuid4(), placement=placement, personalised=personalised)
    if not ad_settings.SERVING_ENABLED or not placement.is_active or not snap.campaigns:
        return decision
    n = placement.max_ads if n is None else max(0, min(int(n), placement.max_ads))
    default_lang = list(ad_settings.LANGUAGES)[0]
    lang = _language(snap, language)

    eligible = _eligible(snap, placement, lang, default_lang, time.time())
    relevance = _context_relevance(snap, context, product_category)
    similarity = np.zeros(len(snap.campaigns))
    vector = None
    if personalised:
        vector = np.asarray(shopper.interest_vector, np.float32)
        similarity = snap.targets @ vector
        has_threshold = ~np.isnan(snap.min_similarity)
        eligible &= ~has_threshold | (similarity >= np.nan_to_num(snap.min_similarity))
        pool = eligible & snap.has_target & ~snap.house
        if pool.sum() > 1:
            mean, std = similarity[pool].mean(), similarity[pool].std()
            interest = np.clip(0.5 + 0.25 * (similarity - mean) / max(float(std), 1e-6), 0.0, 1.0)
            interest[~snap.has_target] = 0.5
            relevance = np.maximum(relevance, interest)
        else:
            relevance = np.maximum(relevance, 0.5)
    else:  # audience-restricted campaigns are personalised by definition: not for this shopper
        eligible &= np.isnan(snap.min_similarity)
        relevance = np.maximum(relevance, 0.5)

    # Candidates: the best campaigns by expected value with their best asset's mean CTR (deterministic,
    # so that the logged propensities are exact given the candidate set).
    best_mean = snap.best_mean.get(lang, snap.best_mean.get(default_lang))
    if best_mean is None:
        return decision
    fallback = snap.best_mean.get(default_lang, best_mean)
    mean_ctr = np.where(best_mean > 0, best_mean, fallback)
    expected = (
        snap.value_per_click * mean_ctr * relevance_factor(relevance, float(ad_settings.SERVING_RELEVANCE_WEIGHT))
    )
    k = int(ad_settings.SERVING_CANDIDATES)
    # Frequency caps are checked on the best campaigns only (one indexed query); capped ones are replaced
    # by the next best, so the candidate set stays deterministic given the shopper's impressions today.
    pool = _top(expected, eligible, 2 * k + n)
    pool = pool[~_capped(snap, shopper, pool)]
    ranked = pool[np.argsort(-expected[pool], kind="stable")]
    sponsored = ranked[~snap.house[ranked]][:k]
    chosen = _choose(snap, sponsored, relevance, lang=lang, default_lang=default_lang, n=n)
    if len(chosen) < n and placement.allow_house_ads:
        house = ranked[snap.house[ranked]][:k]
        if len(house) == 0:  # house ads rank low by value: look for them among all eligible ones
            capped_pool = _top(expected, eligible & snap.house, k)
            house = capped_pool[~_capped(snap, shopper, capped_pool)]
        chosen += _choose(snap, house, relevance, lang=lang, default_lang=default_lang, n=n - len(chosen))
    if not chosen:
        return decision

    now = timezone.now()
    rows, ads = [], []
    for position, (ci, lg, j, propensity, ctr, value, explored) in enumerate(chosen):
        campaign = snap.campaigns[ci]
        arms = snap.arms[lg]
        product = _product(snap, campaign, context, vector)
        landing = arms.landing[j] or (product.url if product else "") or campaign.landing_url or "/"
        description = snap.descriptions.get((ci, lg), (None, ""))
        nonce = uuid.uuid4()
        ctx = {
            "page": context.page,
            "product": None if context.product is None else str(context.product),
            "category": context.category or product_category,
            "query": context.query,
            "similarity": round(float(similarity[ci]), 5),
            "explored": explored,
            "house": bool(snap.house[ci]),
        }
        rows.append(
            (
                nonce, decision.id, placement.id, campaign.id, int(arms.creative_ids[j]), description[0],
                product.pk if product else None, shopper.pk if shopper is not None else None, lg, position,
                propensity, ctr, float(relevance[ci]), value, len(sponsored), personalised, POLICY_NAME,
                json.dumps(ctx), landing, now,
            )
        )  # fmt: skip
        ads.append(
            Ad(
                impression_id=0,
                nonce=nonce,
                campaign_id=campaign.id,
                advertiser=campaign.advertiser,
                campaign=campaign.name,
                headline=arms.texts[j],
                description=description[1],
                product=product,
                language=lg,
                position=position,
                house=bool(snap.house[ci]),
                landing_url=landing,
            )
        )
    for ad, pk in zip(ads, _insert_impressions(rows), strict=True):
        ad.impression_id = pk
    decision.ads = ads
    return decision
