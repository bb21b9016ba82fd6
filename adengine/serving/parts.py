"""One campaign's share of the candidate index, read from the database: its entry, unit target, approved headlines
(with their Beta posteriors, best-first), chosen descriptions, promoted products' cards and vectors, and its point
of the active interest model's space. ``builder`` assembles a snapshot from these, all of them on a full build,
only the changed campaigns' ones on an incremental update (the others are reused as they are)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db import connection
from django.db.models import Case, Q, When
from django.utils import timezone

from adengine.conf import settings as ad_settings
from adengine.models import Campaign, Creative, ProductVector
from adengine.text import CJK

from .policy import prior_from_scores
from .snapshot import CampaignEntry, ProductCard, words


@dataclass(frozen=True)
class Headlines:
    """One campaign's approved headlines in one language, in the order the hot path reads them."""

    creative_ids: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    texts: list[str]
    landing: list[str]


@dataclass
class CampaignPart:
    """What one active campaign contributes to a snapshot (immutable once built: snapshots share it)."""

    entry: CampaignEntry
    target: np.ndarray | None  # unit float32 row; None: no target
    headlines: dict[str, Headlines]
    descriptions: dict[str, tuple[int, str]]  # language -> (creative id, text)
    cards: dict[object, ProductCard]  # its promoted products that can be advertised (in stock)
    product_vectors: dict[object, np.ndarray]  # every promoted product's content vector
    category_keys: tuple[str, ...]  # its own categories and its products'
    words: tuple[str, ...]
    cjk_keywords: tuple[str, ...]
    factors: np.ndarray | None = None  # mean of its products' collaborative factors (hybrid model), None: none
    popularity: float = 0.0
    hybrid_target: np.ndarray | None = None  # its point of the active interest model's space
    # its fit distribution over the audience sample (mean, sd), content and hybrid space; None: no sample
    fit: tuple | None = None
    hybrid_fit: tuple | None = None
    scalars: tuple | None = None  # its figures for the hot path's arrays (builder._scalars), computed once


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


DIGESTS = ("campaign", "assets", "products", "placements")  # the tables a campaign's digest is read from


def digests(sources: Collection[str] = DIGESTS) -> dict[str, dict]:
    """The row versions of campaigns and of their assets and links, by source: for each campaign the ``xmin`` of its
    row (the id of the transaction that wrote it), and the count and sums of ``xmin`` and ids of its assets,
    promoted-product links and placement links. Any committed write to any of these rows changes its campaign's
    digest, whether or not it went through a signal or moved ``updated_at``. ``sources``: only these."""
    tables = {
        "assets": Creative._meta.db_table,
        "products": Campaign.promoted_products.through._meta.db_table,
        "placements": Campaign.placements.through._meta.db_table,
    }
    out: dict[str, dict] = {}
    with connection.cursor() as cur:
        for source in sources:
            if source == "campaign":
                cur.execute(f"SELECT id, xmin::text::bigint FROM {Campaign._meta.db_table}")
            else:
                cur.execute(
                    f"SELECT campaign_id, count(*), sum(xmin::text::bigint), sum(id) FROM {tables[source]} "
                    "GROUP BY campaign_id"
                )
            out[source] = {row[0]: row[1:] for row in cur.fetchall()}
    return out


def active_campaigns(ids: Collection[int] | None = None):
    """The campaigns a snapshot serves: active and not ended (all of them, or those among ``ids``)."""
    qs = Campaign.objects.filter(status=Campaign.Status.ACTIVE).filter(
        Q(ends_at__isnull=True) | Q(ends_at__gt=timezone.now())
    )
    return qs if ids is None else qs.filter(pk__in=list(ids))


def _ts(value) -> float | None:
    return value.timestamp() if value is not None else None


FIT_BLOCK = 256  # campaigns whose fit distributions are computed together (see ``fit_stats``)


def fit_stats(rows: np.ndarray, sample: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sd of each row's similarity to the sample's rows. Computed in zero-padded blocks of FIT_BLOCK rows,
    so that a campaign's figures come from the same arithmetic whether it is read with every other campaign (a full
    build) or alone (an update): the two give the same snapshot, bit for bit."""
    n = len(rows)
    mean = np.zeros(n, np.float32)
    sd = np.zeros(n, np.float32)
    block = np.zeros((FIT_BLOCK, rows.shape[1]), np.float32)
    for start in range(0, n, FIT_BLOCK):
        m = min(FIT_BLOCK, n - start)
        block[:m] = rows[start : start + m]
        block[m:] = 0.0
        fits = block @ sample.T
        mean[start : start + m] = fits.mean(axis=1)[:m]
        sd[start : start + m] = np.maximum(fits.std(axis=1), 1e-6)[:m]
    return mean, sd


def load(
    ids: Collection[int] | None, *, adapter: Any, hybrid: Any = None, sample: tuple = (None, None)
) -> dict[int, CampaignPart]:
    """The parts of the active campaigns (all, or those among ``ids``; the others among ``ids`` are not served),
    in a fixed number of queries whatever their count. ``hybrid`` is the active interest model, if any; ``sample``
    the audience sample's content and hybrid vectors (None: no fit distributions)."""
    langs = list(ad_settings.LANGUAGES)
    rows = list(active_campaigns(ids).select_related("advertiser").order_by("pk"))
    if not rows:
        return {}
    ids = [c.pk for c in rows]
    scope = {"campaign_id__in": ids} if len(ids) < 1000 else {}  # a long IN list costs more than reading all
    through_products = Campaign.promoted_products.through
    through_placements = Campaign.placements.through
    product_fk = Campaign.promoted_products.field.m2m_reverse_field_name()
    wanted = set(ids)
    promoted: dict[int, list] = defaultdict(list)
    for cid, pid in (
        through_products.objects.filter(**scope).order_by("pk").values_list("campaign_id", product_fk).iterator()
    ):
        if cid in wanted:
            promoted[cid].append(pid)
    allowed: dict[int, set[int]] = defaultdict(set)
    for cid, pid in through_placements.objects.filter(**scope).values_list("campaign_id", "placement_id").iterator():
        if cid in wanted:
            allowed[cid].add(pid)

    all_products = {pid for pids in promoted.values() for pid in pids}
    cards: dict[object, ProductCard] = {}
    if all_products:
        for p in adapter.card_products(all_products):
            stock = adapter.product_stock(p)
            if stock is not None and stock <= 0:
                continue  # never advertise what cannot be bought
            cards[p.pk] = product_card(p, adapter=adapter, languages=langs)
    product_vectors = {
        pid: np.asarray(vec, np.float32)
        for pid, vec in ProductVector.objects.filter(product_id__in=all_products).values_list("product_id", "embedding")
    }
    found: dict[object, tuple[np.ndarray, float]] = {}
    if hybrid is not None:
        advertised = {pid for pid in all_products if pid in cards}
        found = {
            pid: (np.asarray(f, np.float32), float(pop))
            for pid, f, pop in ProductVector.objects.filter(
                product_id__in=advertised, factors__isnull=False, hybrid_model=hybrid.version
            ).values_list("product_id", "factors", "popularity")
        }
    headlines = _headlines(ids, scope)
    descriptions = _descriptions(wanted, scope)

    parts: dict[int, CampaignPart] = {}
    for c in rows:
        products = [pid for pid in promoted.get(c.pk, []) if pid in cards]
        entry = CampaignEntry(
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
            cvr_mean=c.cvr_alpha / max(c.cvr_alpha + c.cvr_beta, 1e-9),
            revenue_per_conversion=c.revenue_per_conversion,
            pacing_rate=c.pacing_rate,
            placement_weights=dict(c.placement_weights or {}),
            audience_weights=dict(c.audience_weights or {}),
        )
        vector = c.target_vector
        if vector is None:  # not computed yet: the promoted products' mean stands in (no model needed)
            vecs = [product_vectors[p] for p in products if p in product_vectors]
            vector = np.mean(vecs, axis=0) if vecs else None
        target = None
        if vector is not None:
            v = np.asarray(vector, np.float32)
            norm = float(np.linalg.norm(v))
            if norm > 0:
                target = v / norm
        keys = [key for pid in products for key in cards[pid].categories] + list(c.categories)
        kws = [kw.casefold().strip() for kw in c.keywords]
        part = CampaignPart(
            entry=entry,
            target=target,
            headlines=headlines.get(c.pk, {}),
            descriptions=descriptions.get(c.pk, {}),
            cards={pid: cards[pid] for pid in products},
            product_vectors={pid: product_vectors[pid] for pid in promoted.get(c.pk, []) if pid in product_vectors},
            category_keys=tuple(dict.fromkeys(keys)),
            words=tuple(dict.fromkeys(w for kw in kws for w in words(kw))),
            cjk_keywords=tuple(dict.fromkeys(kw for kw in kws if CJK.search(kw))),
        )
        if hybrid is not None:
            got = [found[p] for p in products if p in found]
            if got:
                part.factors = np.mean([f[: hybrid.rank] for f, _ in got], axis=0)
                part.popularity = float(np.mean([p for _, p in got]))
        parts[c.pk] = part
    _place(list(parts.values()), hybrid=hybrid, sample=sample)
    return parts


def _place(chosen: list[CampaignPart], *, hybrid: Any, sample: tuple) -> None:
    """Each part's point of the hybrid space and fit distributions (row by row: the same alone or with others)."""
    dims = int(ad_settings.VECTOR_DIMENSIONS)
    targets = np.zeros((len(chosen), dims), np.float32)
    for i, p in enumerate(chosen):
        if p.target is not None:
            targets[i] = p.target
    hybrid_targets = None
    if hybrid is not None:
        factors = np.zeros((len(chosen), hybrid.rank), np.float32)
        pop = np.zeros(len(chosen), np.float32)
        for i, p in enumerate(chosen):
            if p.factors is not None:
                factors[i] = p.factors
                pop[i] = p.popularity
        hybrid_targets = hybrid.vectors.product_vectors(targets, factors, pop)
        for i, p in enumerate(chosen):
            p.hybrid_target = hybrid_targets[i]
    content, hybrid_sample = sample
    if content is not None:
        mean, sd = fit_stats(targets, content)
        for i, p in enumerate(chosen):
            p.fit = (mean[i], sd[i])
    if hybrid_targets is not None and hybrid_sample is not None:
        mean, sd = fit_stats(hybrid_targets, hybrid_sample)
        for i, p in enumerate(chosen):
            p.hybrid_fit = (mean[i], sd[i])


def _headlines(ids: list[int], scope: dict) -> dict[int, dict[str, Headlines]]:
    """Each campaign's approved headlines by language with their Beta posteriors (priors from audience fit when
    new), best-first by an optimistic index."""
    base = float(ad_settings.SERVING_BASE_CTR)
    strength = float(ad_settings.SERVING_PRIOR_STRENGTH)
    spread = float(ad_settings.SERVING_PRIOR_SPREAD)
    wanted = set(ids)
    grouped: dict[tuple[int, str], list[tuple]] = defaultdict(list)
    for row in (
        Creative.objects.filter(
            **scope,
            asset_type=Creative.AssetType.HEADLINE,
            status=Creative.Status.APPROVED,
            passes_rules=True,
        )
        .order_by("campaign_id", "pk")
        .values_list("campaign_id", "language", "pk", "text", "landing_url", "score", "ctr_alpha", "ctr_beta", "source")
        .iterator(chunk_size=10_000)
    ):
        if row[0] in wanted:
            grouped[(row[0], row[1])].append(row)
    out: dict[int, dict[str, Headlines]] = defaultdict(dict)
    for (cid, lang), rows in grouped.items():
        scores = np.array([np.nan if r[5] is None else r[5] for r in rows], dtype=np.float64)
        human = np.array([r[8] == Creative.Source.HUMAN for r in rows])
        a0, b0 = prior_from_scores(scores, base_ctr=base, strength=strength, spread=spread, human=human)
        a = np.array([r[6] if r[6] is not None else pa for r, pa in zip(rows, a0, strict=True)], dtype=np.float64)
        b = np.array([r[7] if r[7] is not None else pb for r, pb in zip(rows, b0, strict=True)], dtype=np.float64)
        # Within a campaign, arms in order of an optimistic index (posterior mean + 2 sd): the hot path lets the
        # first SERVING_ASSETS_PER_CAMPAIGN compete, so new, uncertain assets still get in.
        mean = a / (a + b)
        optimistic = mean + 2.0 * np.sqrt(mean * (1.0 - mean) / (a + b + 1.0))
        order = np.argsort(-optimistic, kind="stable")
        out[cid][lang] = Headlines(
            creative_ids=np.array([rows[k][2] for k in order], dtype=np.int64),
            alpha=a[order],
            beta=b[order],
            texts=[rows[k][3] for k in order],
            landing=[rows[k][4] for k in order],
        )
    return out


def _descriptions(wanted: set[int], scope: dict) -> dict[int, dict[str, tuple[int, str]]]:
    """Each campaign's description per language: a person's first (generated copy never replaces it on its
    audience-fit score), best first."""
    out: dict[int, dict[str, tuple[int, str]]] = defaultdict(dict)
    for cid, lang, pk, text in (
        Creative.objects.filter(
            **scope,
            asset_type=Creative.AssetType.DESCRIPTION,
            status=Creative.Status.APPROVED,
            passes_rules=True,
        )
        .order_by(
            "campaign_id", "language", Case(When(source=Creative.Source.HUMAN, then=0), default=1), "-score", "pk"
        )  # fmt: skip
        .values_list("campaign_id", "language", "pk", "text")
        .iterator(chunk_size=10_000)
    ):
        if cid in wanted:
            out[cid].setdefault(lang, (pk, text))
    return out
