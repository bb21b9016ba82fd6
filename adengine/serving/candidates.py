"""A decision's candidate campaigns: every eligible campaign scored by expected value, the best kept.

``score_page`` scores a page for one shopper: eligibility after the audience thresholds and the relevance floor,
each campaign's relevance (the page's fit, and the shopper's interest fit when personalised), the strategy's
delivery shift and the expected value of an impression of its best asset. ``candidate_pool`` then takes the best
after the shopper's repeat decay.

For a shopper who is not personalised (anonymous, no interest vector yet, or personalisation off) none of that
depends on the shopper, only on the page: ``PageScores`` keeps it per process, with the eligible campaigns ranked
by it (the shortlist), for as long as the eligibility it was computed from (``eligibility.eligible``: a second, or
until spend is re-read). Such a decision re-scores only the shortlist with its repeat decay. That gives exactly
the pool the full scoring would: the decay only lowers a campaign's value, so once the shortlist holds as many
campaigns the shopper's decay leaves alone as the pool needs, no campaign outside it can rank above them; when it
does not, the decision scores every campaign as before.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from .click_model import ClickModel, sigmoid
from .context import CLOSE_RELEVANCE, PageContext, page_relevance, relevance_floor
from .experiments import Params
from .policy import relevance_factor
from .snapshot import PlacementEntry, Snapshot

SHORTLIST_FACTOR = 4  # a shortlist holds this many times the pool it serves (a speed knob: exactness is checked)
PAGE_CACHE_BYTES = 32_000_000  # pages' scores kept per process (``PageScoreCache``)


@dataclass
class Scoring:
    """How one decision scores a campaign's ads: the policy, and the per-campaign inputs it reads."""

    contextual: bool  # the click model's posterior; else the context-free Beta posteriors x relevance factor
    model: ClickModel
    x_const: np.ndarray  # the decision's features (position 0) for the click model
    relevance: np.ndarray  # per campaign: max(page fit, interest fit)
    interest: np.ndarray  # per campaign: the shopper's interest fit (NaN: not personalised)
    on_page: np.ndarray  # per campaign: the page fit
    delivery: np.ndarray  # per campaign: the strategy's delivery shift (times the shopper's repeat decay)
    relevance_weight: float
    personalised: bool
    kind: str
    placement_id: int
    other_language: bool  # the page's language is not the shop's default
    hour: float  # the local hour, rounded as logged

    def expected(self, snap: Snapshot, lang: str, where: np.ndarray | None = None) -> np.ndarray:
        """Per campaign: the value of an impression of its best asset with mean parameters (ranks candidates);
        with ``where`` (campaign indices), of those campaigns only, in that order."""
        at = slice(None) if where is None else where
        delivery, relevance = self.delivery[at], self.relevance[at]
        if not self.contextual:
            return snap.value_mean[lang][at] * delivery * relevance_factor(relevance, self.relevance_weight)
        asset_logit = snap.best_ctr_logit.get(lang)
        ctr = sigmoid(self.model.mean_logit(self.x_const, snap.best_ctr[lang][at], relevance, self.interest[at],
                                            self.on_page[at], asset_logit=None if asset_logit is None else
                                            asset_logit[at]))  # fmt: skip
        return snap.value_per_click[at] * delivery * ctr

    def decayed(self, decay: np.ndarray | float) -> Scoring:
        """This scoring with the shopper's repeat decay applied to the delivery shift."""
        if np.isscalar(decay) and decay == 1.0:
            return self
        return dataclasses.replace(self, delivery=self.delivery * decay)


@dataclass
class PageScores:
    """One page's scores for one shopper, before their repeat decay."""

    scoring: Scoring
    ok: np.ndarray  # per campaign: may be shown (eligible, audience, relevance floor)
    expected: np.ndarray  # per campaign: ``scoring.expected``
    shortlist: np.ndarray | None = None  # the ok campaigns with the highest expected value, best first
    complete: bool = False  # the shortlist holds every ok campaign with a finite value
    eligible: np.ndarray | None = None  # the eligibility these were computed from (kept: compared by identity)
    # the slates prepared for the decisions that share these scores, by candidate set (``Engine._prepared``)
    slates: dict = dataclasses.field(default_factory=dict)


def score_page(
    snap: Snapshot,
    eligible: np.ndarray,
    placement: PlacementEntry,
    context: PageContext,
    product_categories: tuple[str, ...],
    params: Params,
    *,
    lang: str,
    default_lang: str,
    kind: str,
    hour: float,
    interest: np.ndarray | None = None,
    audience_ok: np.ndarray | None = None,
    personalised: bool = False,
    shortlist: int = 0,
) -> PageScores:
    """Score every campaign for this page (and shopper, when personalised: ``interest`` and ``audience_ok`` from
    their fit); with ``shortlist`` > 0, also rank the best that many eligible ones."""
    relevance = on_page = page_relevance(snap, context, product_categories)
    if personalised:
        ok = eligible & audience_ok
        relevance = np.maximum(relevance, interest if interest is not None else 0.5)
    else:  # audience-restricted campaigns are personalised by definition: not for this shopper
        ok = eligible & snap.no_threshold
        relevance = np.maximum(relevance, 0.5)
    # Ad rank's relevance floor: on a contextual page an off-topic sponsored ad is not shown, whatever its bid
    # (house ads fill in when nothing clears it)
    floor = params.floor if params.floor is not None else relevance_floor(placement, context)
    ok &= (relevance >= floor - 1e-9) | snap.house
    model = snap.click_model
    other_language = lang != default_lang
    scoring = Scoring(
        contextual=params.policy == "contextual",
        model=model,
        x_const=model.const(
            personalised=personalised,
            kind=kind,
            position=0,
            other_language=other_language,
            hour=hour,
            placement_id=placement.id,
        ),  # fmt: skip
        personalised=personalised,
        kind=kind,
        placement_id=placement.id,
        other_language=other_language,
        hour=hour,
        relevance=relevance,
        interest=interest if interest is not None else snap.no_interest,
        on_page=on_page,
        # the strategy's delivery shift: pacing, the placement's and the audience's relative return
        delivery=snap.delivery_weight[placement.id]
        * np.where(relevance >= CLOSE_RELEVANCE, snap.audience_close, snap.audience_broad),
        relevance_weight=params.relevance_weight,
    )
    page = PageScores(scoring=scoring, ok=ok, expected=_expected(scoring, snap, lang, ok), eligible=eligible)
    if shortlist > 0:
        page.shortlist, page.complete = rank_shortlist(page.expected, ok, shortlist)
    for array in (ok, page.expected, scoring.relevance, scoring.on_page, scoring.delivery):
        array.flags.writeable = False  # shared by the page's next decisions
    return page


def _expected(scoring: Scoring, snap: Snapshot, lang: str, ok: np.ndarray) -> np.ndarray:
    """``scoring.expected`` of the campaigns that may be shown (NaN for the others: nothing reads them). A page
    with a relevance floor or an audience leaves a fraction of the campaigns, and their values alone cost that
    fraction."""
    where = np.flatnonzero(ok)
    if 2 * len(where) >= len(ok):
        return scoring.expected(snap, lang)
    expected = np.full(len(ok), np.nan)
    expected[where] = scoring.expected(snap, lang, where)
    return expected


def rank_shortlist(expected: np.ndarray, ok: np.ndarray, length: int) -> tuple[np.ndarray, bool]:
    """The (up to) ``length`` ok campaigns with the highest expected value, best first, and whether that is every
    ok one with a finite value."""
    best = top(expected, ok, length)
    return best[np.argsort(-expected[best], kind="stable")], len(best) == np.count_nonzero(ok & np.isfinite(expected))


def candidate_pool(page: PageScores, decay: np.ndarray | float, m: int) -> tuple[np.ndarray, np.ndarray]:
    """The (up to) m ok campaigns with the highest expected value after the repeat decay (per campaign, at most 1;
    1.0: none), and those values.

    From the page's shortlist when that is exact: when it holds every ok campaign, or at least m that the decay
    leaves alone (each outside the shortlist is worth at most the shortlist's last before decay, so at most those m
    after it); otherwise from every campaign."""
    if page.shortlist is not None:
        short = page.shortlist
        kept = len(short) if np.isscalar(decay) else np.count_nonzero(decay[short] >= 1.0)
        if page.complete or kept >= m:
            values = page.expected[short] * (decay if np.isscalar(decay) else decay[short])
            if m < len(short):
                best = np.argpartition(-values, m - 1)[:m]
                return short[best], values[best]
            return short, values
    values = page.expected * decay
    pool = top(values, page.ok, m)
    return pool, values[pool]


def top(values: np.ndarray, mask: np.ndarray, k: int) -> np.ndarray:
    """Indices of the (up to) k largest values where mask is set."""
    idx = np.flatnonzero(mask)  # partition only the allowed ones (often a fraction of the campaigns)
    if k < len(idx):
        idx = idx[np.argpartition(-values[idx], k - 1)[:k]]
    return idx[np.isfinite(values[idx])]


def one_per_advertiser(snap: Snapshot, ranked: np.ndarray) -> np.ndarray:
    """The ranked campaigns keeping each advertiser's first (best) only."""
    seen: set[int] = set()
    keep = []
    for ci in ranked.tolist():
        advertiser = snap.campaigns[ci].advertiser_id
        if advertiser not in seen:
            seen.add(advertiser)
            keep.append(ci)
    return np.array(keep, dtype=np.int64)


class PageScoreCache:
    """Per process: recent pages' scores for shoppers who are not personalised, for the snapshot they came from and
    only while the eligibility they were computed from is current; at most PAGE_CACHE_BYTES."""

    def __init__(self, max_bytes: int = PAGE_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self.lock = threading.Lock()
        self.entries: OrderedDict[tuple, PageScores] = OrderedDict()
        self.of: tuple | None = None  # (snapshot, its version)

    def get(self, snap: Snapshot, key: tuple, eligible: np.ndarray) -> PageScores | None:
        with self.lock:
            if self.of is None or self.of[0] is not snap or self.of[1] != snap.version:
                return None
            found = self.entries.get(key)
            if found is None or found.eligible is not eligible or found.scoring.model is not snap.click_model:
                return None
            self.entries.move_to_end(key)
            return found

    def put(self, snap: Snapshot, key: tuple, page: PageScores) -> None:
        # ok, expected, relevance, on-page fit and delivery per campaign, about 40 bytes each
        limit = max(4, self.max_bytes // max(1, 40 * len(snap.campaigns)))
        with self.lock:
            if self.of is None or self.of[0] is not snap or self.of[1] != snap.version:
                self.entries.clear()
                self.of = (snap, snap.version)
            self.entries[key] = page
            self.entries.move_to_end(key)
            while len(self.entries) > limit:
                self.entries.popitem(last=False)

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()
            self.of = None
