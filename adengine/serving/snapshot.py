"""The candidate index's types: one snapshot of the active campaigns, their assets and lookups, read by every
decision of a process (built by ``builder``, held by ``index``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np

from adengine.services.budgets import unit_price
from adengine.text import CJK

_WORD = re.compile(r"[^\W_]{2,}", re.UNICODE)


def words(text: str) -> list[str]:
    """Casefolded word tokens of Latin-script text (CJK runs are matched as substrings instead)."""
    return [w for w in _WORD.findall(text.casefold()) if not CJK.search(w)]


_CJK_RUN = re.compile(CJK.pattern + "{2,}")  # two or more CJK characters in a row


def cjk_bigrams(text: str) -> list[str]:
    """The overlapping two-character pieces of each CJK run (the bigrams of Lucene's CJK analyzer): Chinese writes
    no spaces and most of its words are two characters, so these stand in for words (``context.page_relevance``)."""
    return [run[i : i + 2] for run in _CJK_RUN.findall(text) for i in range(len(run) - 1)]


@dataclass(frozen=True)
class PlacementEntry:
    id: int
    key: str
    format: str
    max_ads: int
    allow_house_ads: bool
    is_active: bool
    relevance_floor: float | None = None  # None: ADENGINE["RELEVANCE_FLOORS"] by the page's kind


@dataclass(frozen=True)
class ProductCard:
    """What a product-card ad shows of a promoted product."""

    pk: object
    url: str
    image_url: str
    price: Decimal | None
    titles: dict[str, str]
    categories: tuple[str, ...]  # keys, main one first
    currency: str = ""
    price_texts: dict[str, str] = field(default_factory=dict)  # language -> the price as an ad shows it
    key: str = ""  # the shop's own key (its SKU: ShopAdapter.product_key), for API clients

    def price_text(self, language: str) -> str:
        return self.price_texts.get(language) or next(iter(self.price_texts.values()), "")

    def title(self, language: str) -> str:
        return self.titles.get(language) or next(iter(self.titles.values()), "")


@dataclass
class CampaignEntry:
    id: int
    advertiser: str
    advertiser_id: int
    name: str
    tier: str
    pricing: str
    objective: str
    bid: Decimal
    total_budget: Decimal
    daily_budget: Decimal | None
    starts_at: float | None
    ends_at: float | None
    frequency_cap: int
    placements: frozenset[int] | None
    categories: tuple[str, ...]
    keywords: tuple[str, ...]
    description: str
    audience_min_similarity: float | None
    landing_url: str
    products: list[object]
    cvr_mean: float
    revenue_per_conversion: float | None
    pacing_rate: float = 1.0
    placement_weights: dict = field(default_factory=dict)
    audience_weights: dict = field(default_factory=dict)

    @property
    def unit_price(self) -> Decimal:
        """What one billable event costs: a click (CPC) or a view (CPM / 1000)."""
        return unit_price(pricing=self.pricing, bid=self.bid)


@dataclass
class Arms:
    """One language's headline assets, sorted by campaign index."""

    creative_ids: np.ndarray
    campaign_idx: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    texts: list[str]
    landing: list[str]
    # campaign index -> (start, end) into the arrays
    spans: dict[int, tuple[int, int]] = field(default_factory=dict)


@dataclass
class Snapshot:
    version: tuple
    built_at: float
    placements: dict[str, PlacementEntry]
    campaigns: list[CampaignEntry]
    index_of: dict[int, int]
    targets: np.ndarray  # (campaigns, dims), unit rows; zero rows where a campaign has no target
    has_target: np.ndarray
    house: np.ndarray
    arms: dict[str, Arms]
    descriptions: dict[tuple[int, str], tuple[int, str]]
    by_product: dict[object, set[int]]
    by_category: dict[str, set[int]]
    by_word: dict[str, set[int]]
    cjk_keywords: dict[str, set[int]]
    cjk_lengths: tuple[int, ...]
    cards: dict[object, ProductCard]
    product_vectors: dict[object, np.ndarray]
    # campaigns in the active interest model's hybrid space (content target, promoted products' factors and
    # popularity), matched against shoppers' hybrid vectors; None without an active model
    hybrid_targets: np.ndarray | None = None
    hybrid_version: str = ""
    starts_at: np.ndarray = field(default_factory=lambda: np.zeros(0))  # nan: no start
    ends_at: np.ndarray = field(default_factory=lambda: np.zeros(0))  # nan: no end
    unit_price: np.ndarray = field(default_factory=lambda: np.zeros(0))
    total_budget: np.ndarray = field(default_factory=lambda: np.zeros(0))
    daily_budget: np.ndarray = field(default_factory=lambda: np.zeros(0))  # nan: none
    frequency_cap: np.ndarray = field(default_factory=lambda: np.zeros(0))
    min_similarity: np.ndarray = field(default_factory=lambda: np.zeros(0))  # nan: none
    value_per_click: np.ndarray = field(default_factory=lambda: np.zeros(0))
    placement_mask: dict[int, np.ndarray] = field(default_factory=dict)
    delivery_weight: dict[int, np.ndarray] = field(default_factory=dict)
    audience_close: np.ndarray = field(default_factory=lambda: np.ones(0))  # weight for relevance >= 0.75
    audience_broad: np.ndarray = field(default_factory=lambda: np.ones(0))
    best_mean: dict[str, np.ndarray] = field(default_factory=dict)  # language -> campaign's best arm mean CTR
    has_copy: dict[str, np.ndarray] = field(default_factory=dict)  # language -> campaign has approved headlines
    value_mean: dict[str, np.ndarray] = field(default_factory=dict)  # language -> value x best mean CTR
    best_ctr: dict[str, np.ndarray] = field(default_factory=dict)  # language -> best arm's mean CTR (with fallback)
    best_ctr_logit: dict[str, np.ndarray] = field(default_factory=dict)  # language -> logit(best_ctr)
    no_interest: np.ndarray = field(default_factory=lambda: np.zeros(0))  # NaN per campaign: not personalised
    click_model: object = None  # click_model.ClickModel: the live model's posterior, else the prior
    # each campaign's fit over a sample of the shop's shoppers (content and hybrid space); None: too few shoppers
    audience_mean: np.ndarray | None = None
    audience_sd: np.ndarray | None = None
    hybrid_audience_mean: np.ndarray | None = None
    hybrid_audience_sd: np.ndarray | None = None
    no_threshold: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    min_similarity0: np.ndarray = field(default_factory=lambda: np.zeros(0))
    target_idx: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    no_target_idx: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    zeros: np.ndarray = field(default_factory=lambda: np.zeros(0))
    # CJK keywords by their two-character pieces (``cjk_bigrams``), each with its number of distinct pieces
    cjk_pieces: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    eligible_cache: dict = field(default_factory=dict)
    experiments: list = field(default_factory=list)

    def experiment_for(self, placement_id: int):
        """The running experiment of a placement (one for this placement first, else one for all)."""
        best = None
        for e in self.experiments:
            if e.placement_id == placement_id:
                return e
            if e.placement_id is None and best is None:
                best = e
        return best

    spent: np.ndarray = field(default_factory=lambda: np.zeros(0))
    spent_today: np.ndarray = field(default_factory=lambda: np.zeros(0))
    spend_day: object = None
    spend_at: float = 0.0
    # what an incremental update starts from (``builder.update``): each served campaign's part (parts.CampaignPart,
    # shared with the snapshots before and after: never changed in place), every campaign's digest as read before
    # its rows, the audience sample the fit distributions were computed over, and when the last full build ran
    parts: dict = field(default_factory=dict)
    digests: dict = field(default_factory=dict)
    audience_sample: np.ndarray | None = None
    hybrid_sample: np.ndarray | None = None
    full_at: float = 0.0
