"""adengine's decision engine: which ads a shopper sees in a placement, logged with their propensities.

One decision, top to bottom (``Engine.decide``):

1. the page (``context``): its language, and each campaign's relevance to what it shows;
2. who may be shown (``eligibility``): active, in budget after pacing (``services.budgets.daily_plan``), allowed
   in the placement, with copy in the language; audience thresholds; frequency caps;
3. the shopper's fit: their interest vector against each campaign's target (the hybrid interest space when both
   have it), standardised, raises relevance;
4. candidates: the best campaigns by expected value (bid x mean click rate x delivery shift x relevance factor)
   from the in-memory candidate index (``index``: a ``snapshot`` built by ``builder``);
5. the slate: Thompson sampling among the candidates' assets (``policy``), house ads to fill;
6. the rows (``rows.ImpressionRow``) go to the impression log (``log``), which writes them off the request path;
   their propensities are computed later from each slate's logged candidate set (``propensity``, on the strategy
   queue); the ads' URLs are signed (``tokens``).

It never loads a model and never touches the broker. The engine owns its per-process caches (the candidate
index, today's impressions per shopper); ``ADENGINE["DECISION_BACKEND"]`` may name another backend.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
from django.db import connection
from django.utils import timezone

from adengine.conf import settings as ad_settings
from adengine.models import Shopper

from .backends import DecisionBackend, IndexNotReady, UnknownPlacement
from .candidates import (
    SHORTLIST_FACTOR,
    PageScoreCache,
    PageScores,
    Scoring,
    candidate_pool,
    one_per_advertiser,
    score_page,
    top,
)
from .context import PageContext, page_kind, resolve_language
from .eligibility import SeenToday, capped, eligible, reserve_capped
from .experiments import Params, params_for
from .index import IndexHolder
from .log import impression_log
from .policy import CONTEXTUAL, POLICY_NAME, Slate, sample_slates
from .propensity import slate_sampler
from .rows import PENDING, ImpressionRow
from .snapshot import CampaignEntry, PlacementEntry, ProductCard, Snapshot

log = logging.getLogger(__name__)
FIT_CACHE_BYTES = 16_000_000  # recent shoppers' fits kept per process (``Engine._shopper_fit``)
PREPARED_PER_PAGE = 64  # prepared slates kept with a page's scores (``Engine._prepared``), per candidate set
MISSING = object()


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
    row: tuple = ()  # the impression's key fields, signed into its URLs (ImpressionRow.SIGNED)


@dataclass
class Decision:
    """The ads for one placement view (possibly none)."""

    id: uuid.UUID
    placement: PlacementEntry
    personalised: bool
    ads: list[Ad] = field(default_factory=list)


_local = threading.local()
SLATE_BATCH = 64  # most slates a prepared slate draws at once (``PreparedSlate.take``)
MAX_RESERVATION_ATTEMPTS = 4  # a decision whose capped ads were refused chooses again at most this often


def _rng() -> np.random.Generator:
    rng = getattr(_local, "rng", None)
    if rng is None:
        rng = _local.rng = np.random.default_rng()
    return rng


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


@dataclass
class PreparedSlate:
    """A slate's competing arms and what they are sampled with: everything of ``_choose`` but the draw, so that the
    decisions of one page that compete over the same candidates share it (``PageScores.slates``).

    Its slates are drawn in batches: one for its first decision, then twice as many each time its draws run out
    (up to SLATE_BATCH), each decision taking one independent slate; a slate prepared for one decision alone
    (a personalised one, say) draws no more than that one."""

    langs: list[str]  # per arm: its language
    idx: np.ndarray  # per arm: its index in that language's arrays
    group: np.ndarray  # per arm: its campaign (an index into the snapshot)
    cand: dict  # the candidate set as logged
    sampler: object
    weight: np.ndarray
    slate_group: np.ndarray
    drawn: list = field(default_factory=list)  # slates drawn and not yet taken
    batch: int = 1  # how many the next draw makes
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, *, n: int, epsilon: float) -> Slate:
        """One slate, never given to another decision (drawn under the lock: tens of microseconds for a batch, and
        decisions that arrive together share one batch instead of each drawing their own)."""
        with self.lock:
            if not self.drawn:
                m, self.batch = self.batch, min(2 * self.batch, SLATE_BATCH)
                self.drawn = sample_slates(
                    _rng(), sampler=self.sampler, weight=self.weight, group=self.slate_group, n=n, epsilon=epsilon, m=m
                )
            return self.drawn.pop()


def _prepare(
    snap: Snapshot,
    candidates: np.ndarray,
    scoring: Scoring,
    *,
    lang: str,
    default_lang: str,
    n: int,
    params: Params,
) -> PreparedSlate | None:
    """The candidate campaigns' arms and their candidate set as logged (every arm's inputs, rounded): the slate is
    sampled from exactly these values, so its propensities (and any other policy's probability of the logged
    choice) can be computed later from the log alone (``propensity``). None: no arm competes."""
    if n <= 0 or len(candidates) == 0:
        return None
    langs, idx, group = _arms_for(snap, candidates, lang, default_lang, params)
    if not langs:
        return None
    alpha = np.empty(len(idx))
    beta = np.empty(len(idx))
    creative_ids = np.empty(len(idx), dtype=np.int64)
    distinct = set(langs)
    for lg in distinct:
        mask = np.fromiter((x == lg for x in langs), bool, len(langs)) if len(distinct) > 1 else slice(None)
        alpha[mask] = snap.arms[lg].alpha[idx[mask]]
        beta[mask] = snap.arms[lg].beta[idx[mask]]
        creative_ids[mask] = snap.arms[lg].creative_ids[idx[mask]]
    base = snap.value_per_click[group] * scoring.delivery[group]
    interest = scoring.interest[group]
    cand = {
        "c": creative_ids.tolist(),
        "g": [snap.campaigns[ci].id for ci in group.tolist()],
        "a": np.round(alpha, 4).tolist(),
        "b": np.round(beta, 4).tolist(),
        "v": [float(f"{x:.6g}") for x in base.tolist()],
        "r": np.round(scoring.relevance[group], 4).tolist(),
        "i": None if np.isnan(interest).all() else np.round(np.nan_to_num(interest, nan=0.5), 4).tolist(),
        "p": np.round(scoring.on_page[group], 4).tolist(),
        "e": params.epsilon,
        "n": n,
        "o": scoring.other_language,
        "h": scoring.hour,
    }
    if not scoring.contextual:
        cand["w"] = float(scoring.relevance_weight)
    sampler, weight, slate_group = slate_sampler(
        cand,
        policy=CONTEXTUAL if scoring.contextual else POLICY_NAME,
        model=scoring.model,
        personalised=scoring.personalised,
        kind=scoring.kind,
        placement_id=scoring.placement_id,
        x_const=scoring.x_const,
    )
    return PreparedSlate(langs, idx, group, cand, sampler, weight, slate_group)


def _choose(prepared: PreparedSlate | None, *, n: int, epsilon: float) -> tuple[list[tuple], dict | None]:
    """Thompson-sample a slate among the prepared arms.

    Returns [(campaign idx, language, arm, sampled CTR, value, explored)] and the slate's candidate set as logged.
    """
    if prepared is None:
        return [], None
    slate = prepared.take(n=n, epsilon=epsilon)
    group, langs, idx = prepared.group, prepared.langs, prepared.idx
    return (
        [
            (int(group[a]), langs[a], int(idx[a]), float(ctr), float(v), slate.explored)
            for a, ctr, v in zip(slate.arms, slate.sampled_ctr, slate.values, strict=True)
        ],
        prepared.cand,
    )


_random = threading.local()


def _uuid4() -> uuid.UUID:
    """A random (version 4) UUID from the OS's randomness, read 4 KiB at a time per thread (one system call per
    256 ids instead of one each: a decision takes three)."""
    buf = getattr(_random, "buf", b"")
    if not buf or _random.pid != os.getpid():  # a forked child never reuses its parent's bytes
        buf, _random.pid = os.urandom(4096), os.getpid()
    _random.buf = buf[16:]
    return uuid.UUID(bytes=buf[:16], version=4)


def _local_hour(now) -> float:
    local = timezone.localtime(now)
    return local.hour + local.minute / 60.0


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


class Engine(DecisionBackend):
    """adengine's own decision backend (the default ``DECISION_BACKEND``), with this process's caches."""

    def __init__(self) -> None:
        self.index = IndexHolder()
        self.seen_today = SeenToday()
        self.log = impression_log
        self._first_build: threading.Thread | None = None
        self._first_built = threading.Event()
        self._first_error: BaseException | None = None
        self._first_lock = threading.Lock()
        self._ids: tuple | None = None  # (snapshot, its version, its campaign ids sorted, their indices)
        self._fits: OrderedDict[tuple, tuple] = OrderedDict()  # recent shoppers' fits to self._fits_of
        self._fits_of: Snapshot | None = None
        self._fits_version: tuple | None = None
        self._fits_lock = threading.Lock()
        self.pages = PageScoreCache()

    def _serving_snapshot(self) -> Snapshot:
        """The index for a decision. The process's first build runs in the background: a decision waits for it at
        most SERVING_INDEX_WAIT_SECONDS (None: as long as it takes), then raises IndexNotReady, so that no request
        thread -- nor the requests queued behind the ones waiting -- is held for a whole build."""
        wait = ad_settings.SERVING_INDEX_WAIT_SECONDS
        if self.index.snapshot is not None or wait is None:
            return self.index.get()
        with self._first_lock:
            if self.index.snapshot is None and (self._first_build is None or not self._first_build.is_alive()):
                self._first_built = threading.Event()
                self._first_error = None
                self._first_build = threading.Thread(
                    target=self._build_first, args=(self._first_built,), name="adengine-index-build", daemon=True
                )
                self._first_build.start()
            built = self._first_built
        built.wait(float(wait))
        if self.index.snapshot is not None:
            return self.index.get()
        if built.is_set() and self._first_error is not None:  # the build failed (say, the database is down)
            raise self._first_error
        raise IndexNotReady("the candidate index is being built")

    def _build_first(self, done: threading.Event) -> None:
        try:
            self.index.get()
        except Exception as exc:
            log.exception("serving index: the first build failed; the next decision starts another")
            self._first_error = exc
        finally:
            connection.close()
            done.set()

    def invalidate(self) -> None:
        self.index.invalidate()

    def campaigns_changed(self, campaign_ids) -> None:
        self.index.invalidate(campaign_ids)

    def reset(self) -> None:
        self.index.invalidate()
        self.seen_today.clear()
        with self._fits_lock:
            self._fits.clear()
        self.pages.clear()

    def shows_product_as(self, product_pk, *, price, available: bool) -> bool:
        snap = self.index.snapshot
        if snap is None or self.index.dirty or self.index.pending is not None:
            return False
        card = snap.cards.get(product_pk)
        return card is None if not available else card is not None and card.price == price

    def snapshot(self) -> Snapshot:
        """The candidate index as this process sees it now (rebuilt or refreshed if due)."""
        return self.index.get()

    def _repeat_decay(self, snap: Snapshot, shopper: Shopper | None) -> np.ndarray | float:
        """Per campaign: SERVING_REPEAT_DECAY to the power of its impressions to this shopper today (house ads
        exempt), so that one advertiser does not fill a shopper's every page; 1 for an anonymous visitor.

        The decayed campaigns are kept with the shopper's counts (``Seen.derived``: their indices and factors, as
        many as the campaigns they saw, not one per campaign) and brought up to date for the campaigns counted
        since: a shopper who saw thousands of ads today (an app session, say) does not cost a pass over all of
        them on every decision."""
        decay = float(ad_settings.SERVING_REPEAT_DECAY)
        if shopper is None or shopper.pk is None or decay >= 1.0:
            return 1.0
        seen = self.seen_today.get(shopper.pk)
        if not seen:
            return 1.0
        with self.seen_today.lock:
            derived = seen.derived
            current = derived is not None and derived[:3] == (id(snap), snap.version, decay)
            if current:
                ids = np.unique(np.array(seen.changed, np.int64))
            else:
                ids = np.fromiter(seen.keys(), np.int64, len(seen))
            counts = np.fromiter((seen.get(int(c), 0) for c in ids), np.float64, len(ids))
            seen.changed.clear()
            where, known = self._campaign_indices(snap, ids)
            repeats = ~snap.house[where]
            where, factors = where[repeats], decay ** counts[known][repeats]
            if current and len(derived[3]):  # the campaigns counted since replace their old factors
                kept = ~np.isin(derived[3], where)
                where = np.concatenate([derived[3][kept], where])
                factors = np.concatenate([derived[4][kept], factors])
            seen.derived = (id(snap), snap.version, decay, where, factors)
        if len(where) == 0:  # only house ads seen: no decay, as for a shopper who saw nothing
            return 1.0
        decays = np.ones(len(snap.campaigns))
        decays[where] = factors
        decays.flags.writeable = False
        return decays

    def _campaign_indices(self, snap: Snapshot, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The snapshot's indices of the campaigns ``ids`` that it has, and which of ``ids`` those are."""
        lookup = self._ids
        stale = lookup is None or lookup[0] is not snap or lookup[1] != snap.version
        if stale or len(lookup[2]) != len(snap.campaigns):
            all_ids = np.fromiter((c.id for c in snap.campaigns), np.int64, len(snap.campaigns))
            order = np.argsort(all_ids, kind="stable")
            lookup = self._ids = (snap, snap.version, all_ids[order], order)
        _, _, sorted_ids, order = lookup
        if len(sorted_ids) == 0:
            return np.zeros(0, np.int64), np.zeros(len(ids), bool)
        pos = np.minimum(np.searchsorted(sorted_ids, ids), len(sorted_ids) - 1)
        known = sorted_ids[pos] == ids
        return order[pos[known]], known

    def _shopper_fit(
        self, snap: Snapshot, shopper: Shopper, vector: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """Per campaign: the shopper's content similarity, interest relevance (None: no audience to stand in) and
        whether they pass its audience threshold -- a product of the whole target matrix, so kept per process for
        the shopper's next pages (keyed by the snapshot and the shopper's vectors, which a refresh changes)."""
        hybrid = (
            np.asarray(shopper.interest_hybrid, np.float32)
            if snap.hybrid_targets is not None
            and shopper.interest_hybrid is not None
            and shopper.interest_hybrid_model == snap.hybrid_version
            else None
        )
        key = (shopper.pk, vector.tobytes(), None if hybrid is None else hybrid.tobytes())
        with self._fits_lock:
            if self._fits_of is not snap or self._fits_version != snap.version:
                self._fits.clear()
                self._fits_of, self._fits_version = snap, snap.version
            found = self._fits.get(key)
            if found is not None:
                self._fits.move_to_end(key)
                return found
        similarity = snap.targets @ vector
        # audience thresholds on the content similarity (the marketer's unit); the fit that ranks is the hybrid
        # model's (content + what shoppers buy together + popularity) when both sides have it
        audience_ok = snap.no_threshold | (similarity >= snap.min_similarity0)
        fit, mean, sd = similarity, snap.audience_mean, snap.audience_sd
        if hybrid is not None:
            fit = snap.hybrid_targets @ hybrid
            mean, sd = snap.hybrid_audience_mean, snap.hybrid_audience_sd
        with_target = fit[snap.target_idx]
        interest = None
        if mean is not None:
            # interest relevance: where the shopper stands in each campaign's audience (0.75: one sd above the
            # shop's average shopper for that campaign, its "close" audience)
            interest = np.clip(0.5 + 0.25 * (fit - mean) / sd, 0.0, 1.0)
            interest[snap.no_target_idx] = 0.5
        elif len(with_target) > 1:  # too few shoppers to know an audience: standardised over the campaigns
            mean, std = float(with_target.mean()), max(float(with_target.std()), 1e-6)
            interest = np.clip(0.5 + (0.25 / std) * (fit - mean), 0.0, 1.0)
            interest[snap.no_target_idx] = 0.5
        result = (similarity, interest, audience_ok)
        for array in result:
            if array is not None:
                array.flags.writeable = False  # shared by the shopper's next decisions
        with self._fits_lock:
            if self._fits_of is snap and self._fits_version == snap.version:
                self._fits[key] = result
                # at most ~16 MB of fits per process, whatever the number of campaigns
                while len(self._fits) > max(8, FIT_CACHE_BYTES // max(1, 17 * len(snap.campaigns))):
                    self._fits.popitem(last=False)
        return result

    @staticmethod
    def _prepared(
        snap: Snapshot,
        page: PageScores | None,
        candidates: np.ndarray,
        scoring: Scoring,
        decay: np.ndarray | float,
        *,
        lang: str,
        default_lang: str,
        n: int,
        params: Params,
    ) -> PreparedSlate | None:
        """``_prepare``, shared through the kept ``page`` by the decisions that compete over the same candidates
        with the same repeat decay of them (every new shopper of a page, say): only their draws differ."""
        if page is None:
            return _prepare(snap, candidates, scoring, lang=lang, default_lang=default_lang, n=n, params=params)
        factors = decay if np.isscalar(decay) else np.asarray(decay)[candidates].tobytes()
        key = (candidates.tobytes(), factors, n, lang, params.epsilon, params.per_campaign, params.creatives)
        found = page.slates.get(key, MISSING)
        if found is MISSING:
            found = _prepare(snap, candidates, scoring, lang=lang, default_lang=default_lang, n=n, params=params)
            if len(page.slates) >= PREPARED_PER_PAGE:
                page.slates.clear()
            page.slates[key] = found
        return found

    def decide(
        self,
        *,
        placement_key: str,
        shopper: Shopper | None,
        context: PageContext | None = None,
        n: int | None = None,
        language: str | None = None,
        product_categories: tuple[str, ...] = (),
        _attempt: int = 0,
    ) -> Decision:
        """Choose and log the ads for one view of a placement. Raises UnknownPlacement for an unknown key,
        IndexNotReady while the process's first candidate index is being built."""
        snap = self._serving_snapshot()
        placement = snap.placements.get(placement_key)
        if placement is None:
            raise UnknownPlacement(placement_key)
        context = context or PageContext()
        personalised = bool(shopper is not None and shopper.personalisation and shopper.interest_vector is not None)
        decision = Decision(id=_uuid4(), placement=placement, personalised=personalised)
        if not ad_settings.SERVING_ENABLED or not placement.is_active or not snap.campaigns:
            return decision
        n = placement.max_ads if n is None else max(0, min(int(n), placement.max_ads))
        default_lang = ad_settings.default_language
        lang = resolve_language(language)
        experiment = snap.experiment_for(placement.id)
        params = params_for(experiment, f"s{shopper.pk}" if shopper is not None and shopper.pk is not None else None)

        if lang not in snap.value_mean:
            return decision
        now = timezone.now()
        kind = page_kind(context)
        hour = round(_local_hour(now), 4)
        k = params.candidates
        m = 2 * k + n  # the pool: frequency caps are checked on the best campaigns only (one indexed query)
        ok = eligible(snap, placement, lang, default_lang)
        score = dict(lang=lang, default_lang=default_lang, kind=kind, hour=hour)  # fmt: skip
        interest = None
        similarity = snap.zeros
        vector = None
        if personalised:
            vector = np.asarray(shopper.interest_vector, np.float32)
            similarity, interest, audience_ok = self._shopper_fit(snap, shopper, vector)
            page = score_page(snap, ok, placement, context, product_categories, params, **score, interest=interest,
                              audience_ok=audience_ok, personalised=True)  # fmt: skip
        else:  # the page's scores are the same for every such shopper: kept a moment, with a shortlist
            key = (placement.id, lang, kind, context.product, context.category, context.query, product_categories,
                   hour, params.policy, params.floor, params.relevance_weight, m)  # fmt: skip
            page = self.pages.get(snap, key, ok)
            if page is None:
                page = score_page(snap, ok, placement, context, product_categories, params, **score,
                                  shortlist=SHORTLIST_FACTOR * m)  # fmt: skip
                self.pages.put(snap, key, page)
        # the diversity of the shopper's session: campaigns they saw today count less
        decay = self._repeat_decay(snap, shopper)
        scoring = page.scoring.decayed(decay)
        relevance, on_page, model = scoring.relevance, scoring.on_page, scoring.model
        shared_page = None if personalised else page  # scores shared with other shoppers' decisions (``self.pages``)
        # Candidates: the best campaigns by expected value with their best asset's mean CTR (deterministic,
        # so that the logged propensities are exact given the candidate set). Capped ones are replaced by the
        # next best, so the candidate set stays deterministic given the shopper's impressions today.
        pool, values = candidate_pool(page, decay, m)
        keep = ~capped(snap, self.seen_today, shopper, pool)
        pool, values = pool[keep], values[keep]
        ranked = pool[np.argsort(-values, kind="stable")]
        # the holdout of an experiment sees house ads only; one campaign per advertiser competes (its best), so
        # a slot never shows one advertiser twice
        sponsored = one_per_advertiser(snap, ranked[~snap.house[ranked]])[:k] if not params.holdout else ranked[:0]
        chosen, candidate_set = _choose(
            self._prepared(snap, shared_page, sponsored, scoring, decay, lang=lang,
                           default_lang=default_lang, n=n, params=params),
            n=n, epsilon=params.epsilon,
        )  # fmt: skip
        slates = [(chosen, len(sponsored), candidate_set)] if chosen else []
        if len(chosen) < n and placement.allow_house_ads:
            house = ranked[snap.house[ranked]][:k]
            if len(house) == 0:  # house ads rank low by value: look for them among all eligible ones
                house_pool = top(page.expected * decay, page.ok & snap.house, k)
                house = house_pool[~capped(snap, self.seen_today, shopper, house_pool)]
            filled, house_set = _choose(
                self._prepared(snap, shared_page, house, scoring, decay, lang=lang,
                               default_lang=default_lang, n=n - len(chosen), params=params),
                n=n - len(chosen), epsilon=params.epsilon,
            )  # fmt: skip
            if filled:
                slates.append((filled, len(house), house_set))
        if not slates:
            return decision
        # caps hold across processes: the capped ads are reserved in the shared counters; when another process
        # took the last impression a cap allows, this process now knows it, and the decision is made again
        # without that campaign (each refusal saturates one more campaign; after MAX_RESERVATION_ATTEMPTS, no ads)
        if shopper is not None and shopper.pk is not None and not reserve_capped(snap, self.seen_today, shopper.pk,
                                                                                slates):  # fmt: skip
            if _attempt + 1 >= MAX_RESERVATION_ATTEMPTS:
                return decision
            return self.decide(placement_key=placement_key, shopper=shopper, context=context, n=n, language=language,
                               product_categories=product_categories, _attempt=_attempt + 1)  # fmt: skip

        policy_name = CONTEXTUAL if scoring.contextual else POLICY_NAME
        ads: list[Ad] = []
        rows: list[ImpressionRow] = []
        for entries, n_candidates, candidate_set in slates:
            for k, (ci, lg, j, ctr, value, explored) in enumerate(entries):
                position = len(ads)
                campaign = snap.campaigns[ci]
                arms = snap.arms[lg]
                product = _product(snap, campaign, context, vector)
                landing = arms.landing[j] or (product.url if product else "") or campaign.landing_url or "/"
                description = snap.descriptions.get((ci, lg), (None, ""))
                nonce = _uuid4()
                ctx = {
                    "page": context.page,
                    "product": None if context.product is None else str(context.product),
                    "category": context.category or next(iter(product_categories), ""),
                    "query": context.query,
                    "similarity": round(float(similarity[ci]), 5),
                    # what decided the relevance, for "Why this ad?": the page's fit and the shopper's
                    "page_relevance": round(float(on_page[ci]), 3),
                    "interest": None if interest is None else round(float(interest[ci]), 3),
                    "explored": explored,
                    "house": bool(snap.house[ci]),
                    "kind": kind,
                    # the asset's posterior mean CTR when it was chosen (the click model's "asset" feature)
                    "asset_ctr": round(float(arms.alpha[j] / (arms.alpha[j] + arms.beta[j])), 6),
                }
                if scoring.contextual:
                    ctx["model"] = model.version
                if k == 0:  # the slate's first row carries its candidates (its propensities are computed from them)
                    ctx["slate"] = candidate_set
                if context.client:
                    ctx["client"] = context.client
                if params.experiment is not None:
                    ctx["experiment"], ctx["arm"] = params.experiment, params.arm
                row = ImpressionRow(
                    nonce=nonce, decision_id=decision.id, placement_id=placement.id, campaign_id=campaign.id,
                    creative_id=int(arms.creative_ids[j]), description_id=description[0],
                    product_id=product.pk if product else None,
                    shopper_id=shopper.pk if shopper is not None else None, language=lg, position=position,
                    propensity=PENDING, predicted_ctr=ctr, relevance=float(relevance[ci]), value=value,
                    candidates=n_candidates, personalised=personalised, policy=policy_name, context=ctx,
                    landing_url=landing, served_at=now,
                )  # fmt: skip
                rows.append(row)
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
                        row=row.signed(),
                    )
                )
        self.log.write(rows, model=model if scoring.contextual else None)
        if shopper is not None and shopper.pk is not None:
            self.seen_today.add(shopper.pk, [ad.campaign_id for ad in ads])
        decision.ads = ads
        return decision
