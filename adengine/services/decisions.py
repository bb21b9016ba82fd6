"""The decision engine: which ads a shopper sees in a placement, logged with their propensities.

The hot path reads the in-memory candidate index (``adengine.serving.index``) and the shopper row it is
given; today's impressions of the shopper (for frequency caps) come from a per-process cache re-read at
most every ``SERVING_CAP_CACHE_SECONDS``; the impressions are handed to the impression log
(``adengine.serving.log``), which estimates their propensities and writes them off the request path.
It never loads a model and never touches the broker.
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

from adengine import clock
from adengine.conf import settings as ad_settings
from adengine.models import Impression, Shopper
from adengine.services.budgets import daily_plan
from adengine.serving import index as serving_index
from adengine.serving.experiments import Params, params_for
from adengine.serving.index import CampaignEntry, PlacementEntry, ProductCard, Snapshot, words
from adengine.serving.log import PendingSlate, impression_log
from adengine.serving.policy import POLICY_NAME, relevance_factor, sample_slate

CONTEXT_PRODUCT = 1.0  # relevance of a campaign promoting the product on the page
CONTEXT_CATEGORY = 0.8  # ... targeting the page's category (or promoting a product in it)
CONTEXT_QUERY = 0.9  # ... whose keywords the search query contains
CLOSE_RELEVANCE = 0.75  # the campaign's "close" audience (adengine.services.strategy uses the same bound)


class UnknownPlacement(LookupError):
    """No placement has this key."""


@dataclass(frozen=True)
class PageContext:
    """What the page shows: its type and the product, category or search query on it (not personal)."""

    page: str = ""
    product: object | None = None
    category: str = ""
    query: str = ""
    client: str = ""  # "api": asked for through the decision API (an app), "": a storefront page


@dataclass
class Ad:
    """One chosen ad, ready to render; ``nonce`` names its impression (and signs its URLs)."""

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
    row: tuple = ()  # the impression's key fields, signed into its URLs (adengine.serving.tokens.ROW_FIELDS)


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


def _eligible(snap: Snapshot, placement: PlacementEntry, lang: str, default_lang: str) -> np.ndarray:
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


class _SeenToday:
    """Per process: shopper -> impressions per campaign today, re-read from the log now and then."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: dict[int, tuple[object, float, dict[int, int]]] = {}

    def get(self, shopper_id: int) -> dict[int, int]:
        today = clock.today()
        now = time.monotonic()
        with self.lock:
            entry = self.entries.get(shopper_id)
        if entry is not None and entry[0] == today and now - entry[1] < float(ad_settings.SERVING_CAP_CACHE_SECONDS):
            return entry[2]
        midnight = clock.midnight()
        with connection.cursor() as cur:
            cur.execute(
                f"SELECT campaign_id, count(*) FROM {Impression._meta.db_table} "
                "WHERE shopper_id = %s AND served_at >= %s GROUP BY campaign_id",
                [shopper_id, midnight],
            )
            seen = dict(cur.fetchall())
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

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()


seen_today = _SeenToday()


def _capped(snap: Snapshot, shopper: Shopper | None, candidates: np.ndarray) -> np.ndarray:
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


def _arms_for(
    snap: Snapshot, campaigns: np.ndarray, lang: str, default_lang: str, params: Params
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Per competing arm: its language, its index in that language's arrays, its campaign (sorted by campaign).

    A campaign's arms are stored best-first by an optimistic index; the first SERVING_ASSETS_PER_CAMPAIGN
    compete (in the page's language, else the default language).
    """
    per = params.per_campaign
    allowed = params.creatives
    langs: list[str] = []
    idx: list[int] = []
    group: list[int] = []
    for ci in np.sort(campaigns).tolist():
        for lg in (lang, default_lang):
            arms = snap.arms.get(lg)
            span = arms.spans.get(ci) if arms is not None else None
            if span and allowed is not None:  # a creative-set arm: only its assets compete
                picked = [j for j in range(*span) if int(arms.creative_ids[j]) in allowed][:per]
                if picked:
                    langs.extend([lg] * len(picked))
                    idx.extend(picked)
                    group.extend([ci] * len(picked))
                    break
            elif span:
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
    params: Params,
    delivery: np.ndarray,
) -> tuple[list[tuple], PendingSlate | None]:
    """Thompson-sample a slate among the candidate campaigns' arms.

    Returns [(campaign idx, language, arm, sampled CTR, value, explored)] and the slate's propensity job.
    """
    if n <= 0 or len(candidates) == 0:
        return [], None
    langs, idx, group = _arms_for(snap, candidates, lang, default_lang, params)
    if not langs:
        return [], None
    alpha = np.empty(len(idx))
    beta = np.empty(len(idx))
    distinct = set(langs)
    for lg in distinct:
        mask = np.fromiter((x == lg for x in langs), bool, len(langs)) if len(distinct) > 1 else slice(None)
        alpha[mask] = snap.arms[lg].alpha[idx[mask]]
        beta[mask] = snap.arms[lg].beta[idx[mask]]
    weight = snap.value_per_click[group] * delivery[group] * relevance_factor(relevance[group], params.relevance_weight)
    epsilon = params.epsilon
    slate = sample_slate(_rng(), alpha=alpha, beta=beta, weight=weight, group=group, n=n, epsilon=epsilon)
    job = PendingSlate(rows=[], alpha=alpha, beta=beta, weight=weight, group=group, arms=slate.arms, epsilon=epsilon)
    return [
        (int(group[a]), langs[a], int(idx[a]), float(ctr), float(v), slate.explored)
        for a, ctr, v in zip(slate.arms, slate.sampled_ctr, slate.values, strict=True)
    ], job


def _top(values: np.ndarray, mask: np.ndarray, k: int) -> np.ndarray:
    """Indices of the (up to) k largest values where mask is set."""
    masked = np.where(mask, values, -np.inf)
    if k < len(masked):
        idx = np.argpartition(-masked, k - 1)[:k]
    else:
        idx = np.arange(len(masked))
    return idx[np.isfinite(masked[idx])]


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
    default_lang = ad_settings.default_language
    lang = _language(snap, language)
    experiment = snap.experiment_for(placement.id)
    params = params_for(experiment, f"s{shopper.pk}" if shopper is not None and shopper.pk is not None else None)

    eligible = _eligible(snap, placement, lang, default_lang)
    relevance = _context_relevance(snap, context, product_category)
    similarity = snap.zeros
    vector = None
    if personalised:
        vector = np.asarray(shopper.interest_vector, np.float32)
        similarity = snap.targets @ vector
        # audience thresholds on the content similarity (the marketer's unit); the fit that ranks is the
        # hybrid model's (content + what shoppers buy together + popularity) when both sides have it
        eligible = eligible & (snap.no_threshold | (similarity >= snap.min_similarity0))
        fit = similarity
        if (
            snap.hybrid_targets is not None
            and shopper.interest_hybrid is not None
            and shopper.interest_hybrid_model == snap.hybrid_version
        ):
            fit = snap.hybrid_targets @ np.asarray(shopper.interest_hybrid, np.float32)
        # interest relevance standardised over the campaigns that have a target
        with_target = fit[snap.target_idx]
        if len(with_target) > 1:
            mean, std = float(with_target.mean()), max(float(with_target.std()), 1e-6)
            interest = np.clip(0.5 + (0.25 / std) * (fit - mean), 0.0, 1.0)
            interest[snap.no_target_idx] = 0.5
            relevance = np.maximum(relevance, interest)
        else:
            relevance = np.maximum(relevance, 0.5)
    else:  # audience-restricted campaigns are personalised by definition: not for this shopper
        eligible = eligible & snap.no_threshold
        relevance = np.maximum(relevance, 0.5)

    # Candidates: the best campaigns by expected value with their best asset's mean CTR (deterministic,
    # so that the logged propensities are exact given the candidate set).
    value_mean = snap.value_mean.get(lang)
    if value_mean is None:
        return decision
    # the strategy's delivery shift: pacing, the placement's and the audience's relative return
    delivery = snap.delivery_weight[placement.id] * np.where(
        relevance >= CLOSE_RELEVANCE, snap.audience_close, snap.audience_broad
    )
    expected = value_mean * delivery * relevance_factor(relevance, params.relevance_weight)
    k = params.candidates
    # Frequency caps are checked on the best campaigns only (one indexed query); capped ones are replaced
    # by the next best, so the candidate set stays deterministic given the shopper's impressions today.
    pool = _top(expected, eligible, 2 * k + n)
    pool = pool[~_capped(snap, shopper, pool)]
    ranked = pool[np.argsort(-expected[pool], kind="stable")]
    # the holdout of an experiment sees house ads only
    sponsored = ranked[~snap.house[ranked]][:k] if not params.holdout else ranked[:0]
    chosen, job = _choose(
        snap, sponsored, relevance, lang=lang, default_lang=default_lang, n=n, params=params, delivery=delivery
    )
    slates = [(chosen, job, len(sponsored))] if chosen else []
    if len(chosen) < n and placement.allow_house_ads:
        house = ranked[snap.house[ranked]][:k]
        if len(house) == 0:  # house ads rank low by value: look for them among all eligible ones
            house_pool = _top(expected, eligible & snap.house, k)
            house = house_pool[~_capped(snap, shopper, house_pool)]
        filled, house_job = _choose(
            snap,
            house,
            relevance,
            lang=lang,
            default_lang=default_lang,
            n=n - len(chosen),
            params=params,
            delivery=delivery,
        )
        if filled:
            slates.append((filled, house_job, len(house)))
    if not slates:
        return decision

    now = timezone.now()
    ads: list[Ad] = []
    for entries, job, n_candidates in slates:
        for ci, lg, j, ctr, value, explored in entries:
            position = len(ads)
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
            if context.client:
                ctx["client"] = context.client
            if params.experiment is not None:
                ctx["experiment"], ctx["arm"] = params.experiment, params.arm
            job.rows.append(
                [
                    nonce, decision.id, placement.id, campaign.id, int(arms.creative_ids[j]), description[0],
                    product.pk if product else None, shopper.pk if shopper is not None else None, lg, position,
                    None, ctr, float(relevance[ci]), value, n_candidates, personalised, POLICY_NAME,
                    json.dumps(ctx), landing, now,
                ]
            )  # fmt: skip
            ads.append(
                Ad(
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
                    row=(
                        placement.id,
                        campaign.id,
                        int(arms.creative_ids[j]),
                        description[0],
                        product.pk if product else None,
                        shopper.pk if shopper is not None else None,
                        lg,
                        position,
                    ),  # fmt: skip
                )
            )
    impression_log.write([job for _, job, _ in slates])
    if shopper is not None and shopper.pk is not None:
        seen_today.add(shopper.pk, [ad.campaign_id for ad in ads])
    decision.ads = ads
    return decision
