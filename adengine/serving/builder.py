"""Building the candidate index from the database: campaigns, approved assets with their posteriors, targets,
page-context lookups, promoted products' display data, spend. Never on the broker, never a model."""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Collection

import numpy as np
from django.db import connection
from django.utils import timezone

from adengine.adapters import get_adapter
from adengine.conf import settings as ad_settings
from adengine.models import (
    Campaign,
    CampaignDay,
    ClickModel,
    Creative,
    Experiment,
    InterestModel,
    Placement,
    Shopper,
)

from . import parts as loader
from .click_model import ClickModel as ServedClickModel
from .click_model import logit
from .click_model import prior as click_prior
from .experiments import ExperimentEntry
from .snapshot import Arms, CampaignEntry, PlacementEntry, ProductCard, Snapshot, cjk_bigrams

log = logging.getLogger(__name__)


# where each digest's table is in the fingerprint
FINGERPRINT = {"campaign": 0, "assets": 1, "products": 4, "placements": 5}


def fingerprint() -> tuple:
    """A cheap fingerprint of everything the snapshot is built from (except spend): per table, its row count and
    the sum of its rows' ``xmin`` (the id of the transaction that wrote each row), which moves with every
    committed insert, update or delete, including ``update()`` calls and transactions that commit late."""
    tables = (
        Campaign._meta.db_table,
        Creative._meta.db_table,
        Placement._meta.db_table,
        Experiment._meta.db_table,
        Campaign.promoted_products.through._meta.db_table,
        Campaign.placements.through._meta.db_table,
    )
    sums = ", ".join(
        f"(SELECT concat_ws(':', count(*), sum(xmin::text::bigint), sum(id)) FROM {t})" for t in tables
    )  # (the ids' sum tells a row deleted and another inserted by one transaction)
    with connection.cursor() as cur:
        cur.execute(
            f"""
            SELECT {sums},
                   (SELECT max(version) FROM {InterestModel._meta.db_table} WHERE is_active),
                   (SELECT max(version) FROM {ClickModel._meta.db_table} WHERE status = 'live')
            """
        )
        return tuple(cur.fetchone())


def _globals(snap: Snapshot) -> None:
    """What every campaign shares: the placements, the running experiments, the click model."""
    snap.experiments = [
        ExperimentEntry(e.pk, e.name, e.placement_id, e.holdout, e.salt, tuple(e.arms))
        for e in Experiment.objects.filter(status=Experiment.Status.RUNNING).order_by("pk")
    ]
    snap.click_model = live_click_model(tuple(p.id for p in snap.placements.values()))


def _placements() -> dict[str, PlacementEntry]:
    return {
        p.key: PlacementEntry(p.pk, p.key, p.format, p.max_ads, p.allow_house_ads, p.is_active, p.relevance_floor)
        for p in Placement.objects.all()
    }


def build(version: tuple | None = None) -> Snapshot:
    """Read campaigns, assets, placements and promoted products into a new snapshot (a full build)."""
    from adengine.services.interest_model import active_model

    started = time.perf_counter()
    version = version if version is not None else fingerprint()
    seen = loader.digests()  # before the rows: a write after this shows as a changed digest at the next update
    hybrid = active_model()
    sample = _audience_sample(hybrid.version if hybrid is not None else "")
    loaded = loader.load(None, adapter=get_adapter(), hybrid=hybrid, sample=sample)
    snap = assemble(version=version, parts=loaded, digests=seen, hybrid=hybrid, sample=sample)
    snap.full_at = snap.built_at
    log.info(
        "serving index built: %d campaigns, %d assets, %d placements in %.2f s",
        len(snap.campaigns),
        sum(len(a.creative_ids) for a in snap.arms.values()),
        len(snap.placements),
        time.perf_counter() - started,
    )
    return snap


def update(snap: Snapshot, version: tuple | None = None, *, campaign_ids: Collection[int] = ()) -> Snapshot:
    """A new snapshot with the changes since ``snap`` was built: the campaigns whose digest changed (and those in
    ``campaign_ids``) re-read, every other campaign's part reused, the placements, experiments and click model
    re-read. The same snapshot as ``build()`` would give (``snap`` is left as it is: readers may hold it). A new
    active interest model changes every campaign: that is a full build."""
    from adengine.services.interest_model import active_model

    started = time.perf_counter()
    version = version if version is not None else fingerprint()
    hybrid = active_model()
    if (hybrid.version if hybrid is not None else "") != snap.hybrid_version:
        return build(version)
    # the digests of the tables whose fingerprint moved (a bid edit reads no asset table)
    moved = [s for s in loader.DIGESTS if version[FINGERPRINT[s]] != snap.version[FINGERPRINT[s]]]
    seen = {**snap.digests, **loader.digests(moved)}
    changed = set(campaign_ids) | (snap.parts.keys() - seen["campaign"].keys())  # named here, deleted
    for source in moved:
        before, after = snap.digests[source], seen[source]
        changed |= {cid for cid in before.keys() | after.keys() if before.get(cid) != after.get(cid)}
    now = time.time()
    ended = {cid for cid, p in snap.parts.items() if p.entry.ends_at is not None and p.entry.ends_at <= now}
    kept = {cid: p for cid, p in snap.parts.items() if cid not in changed and cid not in ended}
    sample = (snap.audience_sample, snap.hybrid_sample)
    kept.update(loader.load(changed, adapter=get_adapter(), hybrid=hybrid, sample=sample) if changed else {})
    fresh = assemble(version=version, parts=kept, digests=seen, hybrid=hybrid, sample=sample)
    fresh.full_at = snap.full_at
    log.info(
        "serving index updated: %d of %d campaigns re-read in %.3f s",
        len(changed),
        len(fresh.campaigns),
        time.perf_counter() - started,
    )
    return fresh


def assemble(
    *, version: tuple, parts: dict[int, loader.CampaignPart], digests: dict, hybrid, sample: tuple
) -> Snapshot:
    """A snapshot from the campaigns' parts (in id order), the shared rows and the audience sample they were read
    with."""
    langs = list(ad_settings.LANGUAGES)
    order = sorted(parts)
    chosen = [parts[cid] for cid in order]
    campaigns = [p.entry for p in chosen]
    dims = int(ad_settings.VECTOR_DIMENSIONS)
    targets = np.zeros((len(chosen), dims), np.float32)
    has_target = np.zeros(len(chosen), bool)
    by_product: dict[object, set[int]] = defaultdict(set)
    by_category: dict[str, set[int]] = defaultdict(set)
    by_word: dict[str, set[int]] = defaultdict(set)
    cjk_keywords: dict[str, set[int]] = defaultdict(set)
    descriptions: dict[tuple[int, str], tuple[int, str]] = {}
    cards: dict[object, ProductCard] = {}
    product_vectors: dict[object, np.ndarray] = {}
    if chosen:
        zero = np.zeros(dims, np.float32)
        targets = np.stack([zero if p.target is None else p.target for p in chosen])
        has_target = np.array([p.target is not None for p in chosen], bool)
    for i, p in enumerate(chosen):
        for pid in p.entry.products:
            by_product[pid].add(i)
        for key in p.category_keys:
            by_category[key].add(i)
        for w in p.words:
            by_word[w].add(i)
        for kw in p.cjk_keywords:
            cjk_keywords[kw].add(i)
        for lang, desc in p.descriptions.items():
            descriptions[(i, lang)] = desc
        cards.update(p.cards)
        product_vectors.update(p.product_vectors)
    snap = Snapshot(
        version=version,
        built_at=time.monotonic(),
        placements=_placements(),
        campaigns=campaigns,
        index_of={cid: i for i, cid in enumerate(order)},
        targets=targets,
        has_target=has_target,
        house=np.array([c.tier == Campaign.Tier.HOUSE for c in campaigns], bool),
        arms=_arms(chosen, langs),
        descriptions=descriptions,
        by_product=dict(by_product),
        by_category=dict(by_category),
        by_word=dict(by_word),
        cjk_keywords=dict(cjk_keywords),
        cjk_lengths=tuple(sorted({len(k) for k in cjk_keywords})),
        cjk_pieces=cjk_pieces(cjk_keywords),
        cards=cards,
        product_vectors=product_vectors,
    )
    snap.parts = parts
    snap.digests = digests
    snap.audience_sample, snap.hybrid_sample = sample
    _hybrid_targets(snap, chosen, hybrid)
    _audience_stats(snap, chosen)
    _globals(snap)
    _derive(snap, chosen)
    refresh_spend(snap)
    return snap


def _arms(chosen: list, langs: list[str]) -> dict[str, Arms]:
    """Each language's headlines of every campaign, concatenated in campaign order."""
    arms: dict[str, Arms] = {}
    for lang in {lang for p in chosen for lang in p.headlines} | set(langs):
        blocks = [(ci, p.headlines[lang]) for ci, p in enumerate(chosen) if lang in p.headlines]
        spans: dict[int, tuple[int, int]] = {}
        start = 0
        for ci, h in blocks:
            spans[ci] = (start, start + len(h.creative_ids))
            start += len(h.creative_ids)
        texts: list[str] = []
        landing: list[str] = []
        for _, h in blocks:
            texts.extend(h.texts)
            landing.extend(h.landing)
        lengths = [len(h.creative_ids) for _, h in blocks]

        def joined(name: str, dtype, blocks=blocks) -> np.ndarray:
            return np.concatenate([getattr(h, name) for _, h in blocks]).astype(dtype) if blocks else np.zeros(0, dtype)

        arms[lang] = Arms(
            creative_ids=joined("creative_ids", np.int64),
            campaign_idx=np.repeat(np.array([ci for ci, _ in blocks], dtype=np.int64), lengths),
            alpha=joined("alpha", np.float64),
            beta=joined("beta", np.float64),
            texts=texts,
            landing=landing,
            spans=spans,
        )
    return arms


def _hybrid_targets(snap: Snapshot, chosen: list, hybrid) -> None:
    """Each campaign as a point of the active interest model's space: its target and its products' factors."""
    if hybrid is None or not len(snap.campaigns):
        return
    snap.hybrid_targets = np.stack([p.hybrid_target for p in chosen])
    snap.hybrid_version = hybrid.version


AUDIENCE_SAMPLE = 2000  # shoppers sampled for each campaign's fit distribution
AUDIENCE_MIN = 200  # fewer shoppers with vectors: interest is standardised across campaigns instead


def _audience_sample(hybrid_version: str) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Interest vectors of a sample of the shop's shoppers (content, and hybrid in the active model's space), the
    same rows while the table is unchanged (a repeatable sample, in key order); None where there are too few."""
    table = Shopper._meta.db_table
    with connection.cursor() as cur:
        cur.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [table])
        estimate = max(float(cur.fetchone()[0] or 0), 1.0)
        share = min(100.0, 100.0 * 3 * AUDIENCE_SAMPLE / estimate)
        sample = f"TABLESAMPLE SYSTEM ({share:.6f}) REPEATABLE (0)" if share < 100.0 else ""
        # real[]: psycopg returns a list of floats, no text '[x,y,...]' to parse per row
        cur.execute(
            f"SELECT interest_vector::real[], interest_hybrid::real[], interest_hybrid_model FROM {table} {sample} "
            "WHERE interest_vector IS NOT NULL AND personalisation ORDER BY id LIMIT %s",
            [AUDIENCE_SAMPLE],
        )
        rows = cur.fetchall()
    if len(rows) < AUDIENCE_MIN:
        return None, None
    content = np.array([r[0] for r in rows], np.float32)
    hybrid = [r[1] for r in rows if r[1] is not None and r[2] == hybrid_version]
    return content, (np.array(hybrid, np.float32) if len(hybrid) >= AUDIENCE_MIN else None)


def _audience_stats(snap: Snapshot, chosen: list) -> None:
    """Each campaign's fit distribution over the shop's shoppers (mean and sd of the similarity of a sample of
    interest vectors to its target, in the content and the hybrid space; ``parts.fit_stats``): serving turns a
    shopper's fit into where they stand in the campaign's audience, a measure that does not depend on the other
    campaigns."""
    if not len(snap.campaigns) or not snap.has_target.any() or snap.audience_sample is None:
        return
    snap.audience_mean = np.array([p.fit[0] for p in chosen], np.float32)
    snap.audience_sd = np.array([p.fit[1] for p in chosen], np.float32)
    if snap.hybrid_targets is not None and snap.hybrid_sample is not None:
        snap.hybrid_audience_mean = np.array([p.hybrid_fit[0] for p in chosen], np.float32)
        snap.hybrid_audience_sd = np.array([p.hybrid_fit[1] for p in chosen], np.float32)


def live_click_model(placement_ids: tuple[int, ...]) -> ServedClickModel:
    """The live click model's posterior, else the prior (today's context-free policy, see ``click_model``)."""
    row = ClickModel.objects.filter(status=ClickModel.Status.LIVE).first()
    if row is not None:
        return ServedClickModel(
            version=row.version, placements=tuple(row.placements), mean=row.mean, cov=row.cov, base_ctr=row.base_ctr
        )
    placements = tuple(sorted(placement_ids))
    base = float(ad_settings.SERVING_BASE_CTR)
    mean, precision = click_prior(
        placements, base_ctr=base, relevance_weight=float(ad_settings.SERVING_RELEVANCE_WEIGHT)
    )
    cov = np.diag(1.0 / precision)
    return ServedClickModel(version="prior", placements=placements, mean=mean, cov=cov, base_ctr=base)


CVR_PRIOR_MEAN = 0.05  # the default conversion posterior Beta(1, 19)


def value_per_click(c: CampaignEntry) -> float:
    """What a click on the campaign is worth in the ranking (see the README's decision engine section)."""
    if c.pricing == Campaign.Pricing.CPC:
        value = float(c.bid)
    else:  # CPM: the view price, quality-adjusted by the asset's click rate relative to the base rate
        value = float(c.bid) / 1000.0 / float(ad_settings.SERVING_BASE_CTR)
    if c.objective in (Campaign.Objective.CONVERSIONS, Campaign.Objective.ROI):
        value *= c.cvr_mean / CVR_PRIOR_MEAN
    if c.objective == Campaign.Objective.ROI and c.revenue_per_conversion and float(c.bid) > 0:
        value *= min(4.0, max(0.25, c.cvr_mean * c.revenue_per_conversion / float(c.bid)))
    return value


def _scalars(c: CampaignEntry) -> tuple[float, ...]:
    """A campaign's figures for the hot path's arrays, in ``SCALARS`` order (NaN: none)."""
    nan = float("nan")
    return (
        c.starts_at if c.starts_at is not None else nan,
        c.ends_at if c.ends_at is not None else nan,
        float(c.unit_price),
        float(c.total_budget),
        float(c.daily_budget) if c.daily_budget is not None else nan,
        float(c.frequency_cap),
        c.audience_min_similarity if c.audience_min_similarity is not None else nan,
        value_per_click(c),
        float(c.audience_weights.get("close", 1.0)),
        float(c.audience_weights.get("broad", 1.0)),
    )


SCALARS = ("starts_at", "ends_at", "unit_price", "total_budget", "daily_budget", "frequency_cap", "min_similarity",
           "value_per_click", "audience_close", "audience_broad")  # fmt: skip


def _derive(snap: Snapshot, chosen: list) -> None:
    """The per-campaign arrays the hot path filters and ranks with."""
    cs = snap.campaigns
    for p in chosen:  # kept with the part: an update computes only the re-read campaigns' figures
        if p.scalars is None:
            p.scalars = _scalars(p.entry)
    table = np.array([p.scalars for p in chosen], dtype=np.float64).reshape(len(chosen), len(SCALARS))
    for k, name in enumerate(SCALARS):
        setattr(snap, name, np.ascontiguousarray(table[:, k]))
    snap.frequency_cap = snap.frequency_cap.astype(np.int64)
    snap.no_threshold = np.isnan(snap.min_similarity)
    snap.min_similarity0 = np.nan_to_num(snap.min_similarity)
    snap.target_idx = np.flatnonzero(snap.has_target)
    snap.no_target_idx = np.flatnonzero(~snap.has_target)
    snap.zeros = np.zeros(len(cs))
    snap.zeros.flags.writeable = False
    for p in snap.placements.values():
        snap.placement_mask[p.id] = np.array([c.placements is None or p.id in c.placements for c in cs], bool)
        # the strategy's delivery shift: pacing ahead of plan, and the placement's relative return
        snap.delivery_weight[p.id] = np.array(
            [c.pacing_rate * float(c.placement_weights.get(p.key, 1.0)) for c in cs], dtype=np.float64
        )
    for lang, arms in snap.arms.items():
        has = np.zeros(len(cs), bool)
        has[list(arms.spans)] = True
        snap.has_copy[lang] = has
        best = np.zeros(len(cs))
        means = arms.alpha / (arms.alpha + arms.beta) if len(arms.alpha) else arms.alpha
        if arms.spans:  # spans are contiguous, in campaign order: one reduction over all of them
            best[list(arms.spans)] = np.maximum.reduceat(means, [s for s, _ in arms.spans.values()])
        snap.best_mean[lang] = best
    default = ad_settings.default_language
    for lang, best in snap.best_mean.items():
        fallback = snap.best_mean.get(default, best)
        snap.best_ctr[lang] = np.where(best > 0, best, fallback)
        snap.value_mean[lang] = snap.value_per_click * snap.best_ctr[lang]
    for lang in ad_settings.LANGUAGES:  # a language without any copy falls back to the default's
        if lang not in snap.value_mean and default in snap.value_mean:
            snap.value_mean[lang] = snap.value_mean[default]
            snap.best_ctr[lang] = snap.best_ctr[default]
    snap.best_ctr_logit = {lang: logit(ctr) for lang, ctr in snap.best_ctr.items()}  # the click model's input
    snap.no_interest = np.full(len(cs), np.nan)
    snap.no_interest.flags.writeable = False


def refresh_spend(snap: Snapshot) -> None:
    """Re-read total and today's spend of the active campaigns (two plain queries, no long IN lists)."""
    today = timezone.localdate()
    spent = np.zeros(len(snap.campaigns))
    spent_today = np.zeros(len(snap.campaigns))
    if snap.campaigns:
        index_of = snap.index_of
        with connection.cursor() as cur:
            cur.execute(f"SELECT id, spent FROM {Campaign._meta.db_table} WHERE status = %s", [Campaign.Status.ACTIVE])
            for cid, value in cur.fetchall():
                i = index_of.get(cid)
                if i is not None:
                    spent[i] = float(value)
            cur.execute(f"SELECT campaign_id, spent FROM {CampaignDay._meta.db_table} WHERE day = %s", [today])
            for cid, value in cur.fetchall():
                i = index_of.get(cid)
                if i is not None:
                    spent_today[i] = float(value)
    snap.spent, snap.spent_today, snap.spend_day, snap.spend_at = spent, spent_today, today, time.monotonic()


def cjk_pieces(keywords) -> dict[str, list[tuple[str, int]]]:
    """Each CJK keyword under each of its two-character pieces, with how many distinct pieces it has."""
    pieces: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for kw in keywords:
        own = set(cjk_bigrams(kw))
        for piece in own:
            pieces[piece].append((kw, len(own)))
    return dict(pieces)
