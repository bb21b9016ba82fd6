"""Building the candidate index from the database: campaigns, approved assets with their posteriors, targets,
page-context lookups, promoted products' display data, spend. Never on the broker, never a model."""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from typing import Any

import numpy as np
from django.db import connection
from django.db.models import Case, Q, When
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
    ProductVector,
    Shopper,
)
from adengine.text import CJK

from .click_model import ClickModel as ServedClickModel
from .click_model import prior as click_prior
from .experiments import ExperimentEntry
from .policy import prior_from_scores
from .snapshot import Arms, CampaignEntry, PlacementEntry, ProductCard, Snapshot, words

log = logging.getLogger(__name__)


def fingerprint() -> tuple:
    """A cheap fingerprint of everything the snapshot is built from (except spend)."""
    with connection.cursor() as cur:
        cur.execute(
            f"""
            SELECT (SELECT max(updated_at) FROM {Campaign._meta.db_table}),
                   (SELECT count(*) FROM {Campaign._meta.db_table}),
                   (SELECT max(updated_at) FROM {Creative._meta.db_table}),
                   (SELECT count(*) FROM {Creative._meta.db_table}),
                   (SELECT max(updated_at) FROM {Placement._meta.db_table}),
                   (SELECT count(*) FROM {Placement._meta.db_table}),
                   (SELECT max(updated_at) FROM {Experiment._meta.db_table}),
                   (SELECT count(*) FROM {Experiment._meta.db_table}),
                   (SELECT max(version) FROM {InterestModel._meta.db_table} WHERE is_active),
                   (SELECT max(version) FROM {ClickModel._meta.db_table} WHERE status = 'live')
            """
        )
        return tuple(cur.fetchone())


def _ts(value) -> float | None:
    return value.timestamp() if value is not None else None


def product_card(product: Any, *, adapter: Any, languages: list[str]) -> ProductCard:
    """What an ad shows of a promoted product, read through the shop adapter (the admin's previews read the same)."""
    price, currency = adapter.product_price(product), adapter.product_currency(product)
    return ProductCard(
        pk=product.pk,
        url=adapter.product_url(product),
        image_url=adapter.product_image_url(product),
        price=price,
        titles={lang: adapter.product_title(product, lang) for lang in languages},
        categories=adapter.category_keys(product),
        currency=currency,
        price_texts={lang: adapter.format_price(price, currency, lang) for lang in languages},
        key=adapter.product_key(product),
    )


def build(version: tuple | None = None) -> Snapshot:
    """Read campaigns, assets, placements and promoted products into a new snapshot."""
    started = time.perf_counter()
    version = version if version is not None else fingerprint()
    adapter = get_adapter()
    langs = list(ad_settings.LANGUAGES)
    placements = {
        p.key: PlacementEntry(p.pk, p.key, p.format, p.max_ads, p.allow_house_ads, p.is_active, p.relevance_floor)
        for p in Placement.objects.all()
    }
    rows = list(
        Campaign.objects.filter(status=Campaign.Status.ACTIVE)
        .filter(Q(ends_at__isnull=True) | Q(ends_at__gt=timezone.now()))
        .select_related("advertiser")
        .order_by("pk")
    )
    ids = [c.pk for c in rows]
    through_products = Campaign.promoted_products.through
    through_placements = Campaign.placements.through
    product_fk = Campaign.promoted_products.field.m2m_reverse_field_name()
    promoted: dict[int, list] = defaultdict(list)
    for cid, pid in through_products.objects.filter(campaign_id__in=ids).values_list("campaign_id", product_fk):
        promoted[cid].append(pid)
    allowed: dict[int, set[int]] = defaultdict(set)
    for cid, pid in through_placements.objects.filter(campaign_id__in=ids).values_list("campaign_id", "placement_id"):
        allowed[cid].add(pid)

    all_products = {pid for pids in promoted.values() for pid in pids}
    cards: dict[object, ProductCard] = {}
    if all_products:
        for p in adapter.products().filter(pk__in=all_products):
            stock = adapter.product_stock(p)
            if stock is not None and stock <= 0:
                continue  # never advertise what cannot be bought
            cards[p.pk] = product_card(p, adapter=adapter, languages=langs)
    product_vectors = {
        pid: np.asarray(vec, np.float32)
        for pid, vec in ProductVector.objects.filter(product_id__in=all_products).values_list("product_id", "embedding")
    }

    dims = int(ad_settings.VECTOR_DIMENSIONS)
    campaigns: list[CampaignEntry] = []
    targets = np.zeros((len(rows), dims), np.float32)
    has_target = np.zeros(len(rows), bool)
    by_product: dict[object, set[int]] = defaultdict(set)
    by_category: dict[str, set[int]] = defaultdict(set)
    by_word: dict[str, set[int]] = defaultdict(set)
    cjk_keywords: dict[str, set[int]] = defaultdict(set)
    for i, c in enumerate(rows):
        products = [pid for pid in promoted.get(c.pk, []) if pid in cards]
        cvr_mean = c.cvr_alpha / max(c.cvr_alpha + c.cvr_beta, 1e-9)
        campaigns.append(
            CampaignEntry(
                id=c.pk,
                advertiser=c.advertiser.name,
                advertiser_id=c.advertiser_id,
                name=c.name,
                tier=c.tier,
                pricing=c.pricing,
                objective=c.objective,
                bid=c.bid,
                total_budget=c.total_budget,
                daily_budget=c.daily_budget,
                starts_at=_ts(c.starts_at),
                ends_at=_ts(c.ends_at),
                frequency_cap=c.frequency_cap,
                placements=frozenset(allowed[c.pk]) if allowed.get(c.pk) else None,
                categories=tuple(c.categories),
                keywords=tuple(c.keywords),
                description=c.description,
                audience_min_similarity=c.audience_min_similarity,
                landing_url=c.landing_url,
                products=products,
                cvr_mean=cvr_mean,
                revenue_per_conversion=c.revenue_per_conversion,
                pacing_rate=c.pacing_rate,
                placement_weights=dict(c.placement_weights or {}),
                audience_weights=dict(c.audience_weights or {}),
            )
        )
        vector = c.target_vector
        if vector is None:  # not computed yet: the promoted products' mean stands in (no model needed)
            vecs = [product_vectors[p] for p in products if p in product_vectors]
            vector = np.mean(vecs, axis=0) if vecs else None
        if vector is not None:
            v = np.asarray(vector, np.float32)
            norm = float(np.linalg.norm(v))
            if norm > 0:
                targets[i] = v / norm
                has_target[i] = True
        for pid in products:
            by_product[pid].add(i)
            for key in cards[pid].categories:
                by_category[key].add(i)
        for key in c.categories:
            by_category[key].add(i)
        for kw in c.keywords:
            kw = kw.casefold().strip()
            if CJK.search(kw):
                cjk_keywords[kw].add(i)
            for w in words(kw):
                by_word[w].add(i)
    index_of = {c.id: i for i, c in enumerate(campaigns)}

    arms = _build_arms(index_of, langs)
    descriptions: dict[tuple[int, str], tuple[int, str]] = {}
    for cr in (
        Creative.objects.filter(
            campaign_id__in=ids,
            asset_type=Creative.AssetType.DESCRIPTION,
            status=Creative.Status.APPROVED,
            passes_rules=True,
        )
        # a person's description first (generated copy never replaces it on its audience-fit score), best first
        .order_by(
            "campaign_id", "language", Case(When(source=Creative.Source.HUMAN, then=0), default=1), "-score", "pk"
        )  # fmt: skip
        .values_list("campaign_id", "language", "pk", "text")
    ):
        descriptions.setdefault((index_of[cr[0]], cr[1]), (cr[2], cr[3]))

    snap = Snapshot(
        version=version,
        built_at=time.monotonic(),
        placements=placements,
        campaigns=campaigns,
        index_of=index_of,
        targets=targets,
        has_target=has_target,
        house=np.array([c.tier == Campaign.Tier.HOUSE for c in campaigns], bool),
        arms=arms,
        descriptions=descriptions,
        by_product=dict(by_product),
        by_category=dict(by_category),
        by_word=dict(by_word),
        cjk_keywords=dict(cjk_keywords),
        cjk_lengths=tuple(sorted({len(k) for k in cjk_keywords})),
        cards=cards,
        product_vectors=product_vectors,
    )
    _hybrid_targets(snap, promoted_of=[c.products for c in campaigns])
    snap.experiments = [
        ExperimentEntry(e.pk, e.name, e.placement_id, e.holdout, e.salt, tuple(e.arms))
        for e in Experiment.objects.filter(status=Experiment.Status.RUNNING).order_by("pk")
    ]
    snap.click_model = live_click_model(tuple(p.id for p in placements.values()))
    _audience_stats(snap)
    _derive(snap)
    refresh_spend(snap)
    log.info(
        "serving index built: %d campaigns, %d assets, %d placements in %.2f s",
        len(campaigns),
        sum(len(a.creative_ids) for a in arms.values()),
        len(placements),
        time.perf_counter() - started,
    )
    return snap


def _hybrid_targets(snap: Snapshot, *, promoted_of: list[list]) -> None:
    """Each campaign as a point of the active interest model's space: its target and its products' factors."""
    from adengine.services.interest_model import active_model

    model = active_model()
    if model is None or not len(snap.campaigns):
        return
    pids = {pid for products in promoted_of for pid in products}
    rows = ProductVector.objects.filter(product_id__in=pids, factors__isnull=False, hybrid_model=model.version)
    found = {
        pid: (np.asarray(f, np.float32), float(pop))
        for pid, f, pop in rows.values_list("product_id", "factors", "popularity")
    }
    k = model.rank
    factors = np.zeros((len(snap.campaigns), k), np.float32)
    pop = np.zeros(len(snap.campaigns), np.float32)
    for i, products in enumerate(promoted_of):
        got = [found[p] for p in products if p in found]
        if got:
            factors[i] = np.mean([f[:k] for f, _ in got], axis=0)
            pop[i] = float(np.mean([p for _, p in got]))
    snap.hybrid_targets = model.vectors.product_vectors(snap.targets, factors, pop)
    snap.hybrid_version = model.version


AUDIENCE_SAMPLE = 2000  # shoppers sampled for each campaign's fit distribution
AUDIENCE_MIN = 200  # fewer shoppers with vectors: interest is standardised across campaigns instead


def _vector(value) -> np.ndarray:
    """A pgvector value as a raw cursor returns it (text '[x,y,...]' unless the adapter is registered)."""
    if isinstance(value, str):
        return np.array(value[1:-1].split(","), dtype=np.float32)
    return np.asarray(value, np.float32)


def _audience_stats(snap: Snapshot) -> None:
    """Each campaign's fit distribution over the shop's shoppers (mean and sd of the similarity of a sample of
    interest vectors to its target, in the content and the hybrid space): serving turns a shopper's fit into
    where they stand in the campaign's audience, a measure that does not depend on the other campaigns."""
    if not len(snap.campaigns) or not snap.has_target.any():
        return
    table = Shopper._meta.db_table
    with connection.cursor() as cur:
        cur.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [table])
        estimate = max(float(cur.fetchone()[0] or 0), 1.0)
        share = min(100.0, 100.0 * 3 * AUDIENCE_SAMPLE / estimate)
        sample = f"TABLESAMPLE SYSTEM ({share:.6f})" if share < 100.0 else ""
        cur.execute(
            f"SELECT interest_vector, interest_hybrid, interest_hybrid_model FROM {table} {sample} "
            "WHERE interest_vector IS NOT NULL AND personalisation LIMIT %s",
            [AUDIENCE_SAMPLE],
        )
        rows = cur.fetchall()
    if len(rows) < AUDIENCE_MIN:
        return
    content = np.array([_vector(r[0]) for r in rows])
    fits = snap.targets @ content.T
    snap.audience_mean = fits.mean(axis=1)
    snap.audience_sd = np.maximum(fits.std(axis=1), 1e-6)
    hybrid = [_vector(r[1]) for r in rows if r[1] is not None and r[2] == snap.hybrid_version]
    if snap.hybrid_targets is not None and len(hybrid) >= AUDIENCE_MIN:
        fits = snap.hybrid_targets @ np.array(hybrid).T
        snap.hybrid_audience_mean = fits.mean(axis=1)
        snap.hybrid_audience_sd = np.maximum(fits.std(axis=1), 1e-6)


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


def _derive(snap: Snapshot) -> None:
    """The per-campaign arrays the hot path filters and ranks with."""
    cs = snap.campaigns
    nan = float("nan")
    snap.starts_at = np.array([c.starts_at if c.starts_at is not None else nan for c in cs], dtype=np.float64)
    snap.ends_at = np.array([c.ends_at if c.ends_at is not None else nan for c in cs], dtype=np.float64)
    snap.unit_price = np.array([float(c.unit_price) for c in cs], dtype=np.float64)
    snap.total_budget = np.array([float(c.total_budget) for c in cs], dtype=np.float64)
    snap.daily_budget = np.array(
        [float(c.daily_budget) if c.daily_budget is not None else nan for c in cs], dtype=np.float64
    )
    snap.frequency_cap = np.array([c.frequency_cap for c in cs], dtype=np.int64)
    snap.min_similarity = np.array(
        [c.audience_min_similarity if c.audience_min_similarity is not None else nan for c in cs], dtype=np.float64
    )
    snap.value_per_click = np.array([value_per_click(c) for c in cs], dtype=np.float64)
    snap.audience_close = np.array([float(c.audience_weights.get("close", 1.0)) for c in cs], dtype=np.float64)
    snap.audience_broad = np.array([float(c.audience_weights.get("broad", 1.0)) for c in cs], dtype=np.float64)
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
        for ci, (s, e) in arms.spans.items():
            best[ci] = means[s:e].max()
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
    snap.no_interest = np.full(len(cs), np.nan)
    snap.no_interest.flags.writeable = False


def _build_arms(index_of: dict[int, int], langs: list[str]) -> dict[str, Arms]:
    """Each language's approved headlines with their Beta posteriors (priors from audience fit when new)."""
    base = float(ad_settings.SERVING_BASE_CTR)
    strength = float(ad_settings.SERVING_PRIOR_STRENGTH)
    spread = float(ad_settings.SERVING_PRIOR_SPREAD)
    grouped: dict[tuple[str, int], list[tuple]] = defaultdict(list)
    for row in (
        Creative.objects.filter(
            campaign_id__in=list(index_of),
            asset_type=Creative.AssetType.HEADLINE,
            status=Creative.Status.APPROVED,
            passes_rules=True,
        )
        .order_by("campaign_id", "pk")
        .values_list("campaign_id", "language", "pk", "text", "landing_url", "score", "ctr_alpha", "ctr_beta", "source")
    ):
        grouped[(row[1], index_of[row[0]])].append(row)
    arms: dict[str, Arms] = {}
    for lang in {lang for lang, _ in grouped} | set(langs):
        keys = sorted(ci for (lg, ci) in grouped if lg == lang)
        ids, cidx, alpha, beta, texts, landing = [], [], [], [], [], []
        spans: dict[int, tuple[int, int]] = {}
        for ci in keys:
            rows = grouped[(lang, ci)]
            scores = np.array([np.nan if r[5] is None else r[5] for r in rows], dtype=np.float64)
            human = np.array([r[8] == Creative.Source.HUMAN for r in rows])
            a0, b0 = prior_from_scores(scores, base_ctr=base, strength=strength, spread=spread, human=human)
            start = len(ids)
            a = np.array([r[6] if r[6] is not None else pa for r, pa in zip(rows, a0, strict=True)])
            b = np.array([r[7] if r[7] is not None else pb for r, pb in zip(rows, b0, strict=True)])
            # Within a campaign, arms in order of an optimistic index (posterior mean + 2 sd): the hot path
            # lets the first SERVING_ASSETS_PER_CAMPAIGN compete, so new, uncertain assets still get in.
            mean = a / (a + b)
            optimistic = mean + 2.0 * np.sqrt(mean * (1.0 - mean) / (a + b + 1.0))
            for k in np.argsort(-optimistic, kind="stable"):
                r = rows[k]
                ids.append(r[2])
                cidx.append(ci)
                alpha.append(float(a[k]))
                beta.append(float(b[k]))
                texts.append(r[3])
                landing.append(r[4])
            spans[ci] = (start, len(ids))
        arms[lang] = Arms(
            creative_ids=np.array(ids, dtype=np.int64),
            campaign_idx=np.array(cidx, dtype=np.int64),
            alpha=np.array(alpha, dtype=np.float64),
            beta=np.array(beta, dtype=np.float64),
            texts=texts,
            landing=landing,
            spans=spans,
        )
    return arms


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
