"""Audience selection ("target user selection"): shoppers nearest to a campaign's target.

The target vector is the normalised sum of the mean vector of the promoted products and the
passage embedding of the description and keywords. Filters (consent, recent activity, registered
only) run inside the HNSW scan with pgvector's iterative scan (``hnsw.iterative_scan``), so a
filtered query still returns ``k`` shoppers when that many qualify. The index is half-precision (half
the size, faster to build and to search); its candidates are re-ranked by the exact distance.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from django.db import connection, transaction
from django.utils import timezone
from pgvector.django import CosineDistance, MaxInnerProduct

from adengine.adapters import get_adapter
from adengine.conf import settings as ad_settings
from adengine.ml import profile
from adengine.models import BehaviourEvent, Campaign, ProductVector, Shopper
from adengine.models.events import HYBRID_DIMENSIONS, VECTOR_DIMENSIONS, half_precision
from adengine.selectors.vectors import ef_search_for, half_query, rerank_candidates, set_hnsw


def target_text(campaign: Campaign) -> str:
    """What is embedded of the campaign's words: description and keywords."""
    parts = [campaign.description.strip(), ", ".join(k.strip() for k in campaign.keywords if k.strip())]
    return ". ".join(p for p in parts if p)


@dataclass
class AudienceMember:
    shopper: Shopper
    distance: float

    @property
    def similarity(self) -> float:
        return 1.0 - self.distance


def nearest_shoppers(
    vector,
    *,
    k: int = 100,
    active_within_days: float | None = None,
    registered_only: bool = False,
    ef_search: int | None = None,
    hybrid: tuple[str, np.ndarray] | None = None,
) -> list[AudienceMember]:
    """The ``k`` consenting shoppers whose interest vectors are nearest (cosine) to ``vector``.

    With ``hybrid`` (interest model version, the target in that model's space) they are ranked by the
    hybrid interest model's fit instead (inner product on ``interest_hybrid``: content, what shoppers
    buy together, popularity); ``distance`` stays the content cosine distance, the unit marketers see.
    Either way the half-precision HNSW index gives ``rerank_candidates(k)`` candidates (the filters run
    inside its iterative scan) and the ``k`` best of them by the exact, full-precision score are returned.
    """
    qs = Shopper.objects.filter(personalisation=True, interest_vector__isnull=False)
    if active_within_days is not None:
        qs = qs.filter(last_event_at__gte=timezone.now() - dt.timedelta(days=active_within_days))
    if registered_only:
        qs = qs.filter(user__isnull=False)
    candidates = rerank_candidates(k)
    ef = ef_search or ef_search_for(Shopper, at_least=candidates)
    if hybrid is not None:
        version, target = hybrid
        near = qs.filter(interest_hybrid_model=version, interest_hybrid__isnull=False).order_by(
            MaxInnerProduct(half_precision("interest_hybrid", HYBRID_DIMENSIONS), half_query(target))
        )
        exact = Shopper.objects.annotate(
            neg_fit=MaxInnerProduct("interest_hybrid", target), distance=CosineDistance("interest_vector", vector)
        ).order_by("neg_fit", "pk")
        rows = _rerank(near, exact, candidates=candidates, k=k, ef_search=ef)
        if rows:
            return [AudienceMember(s, float(s.distance)) for s in rows]
    near = qs.order_by(CosineDistance(half_precision("interest_vector", VECTOR_DIMENSIONS), half_query(vector)))
    exact = Shopper.objects.annotate(distance=CosineDistance("interest_vector", vector)).order_by("distance", "pk")
    return [
        AudienceMember(s, float(s.distance)) for s in _rerank(near, exact, candidates=candidates, k=k, ef_search=ef)
    ]


def _rerank(near, exact, *, candidates: int, k: int, ef_search: int) -> list[Shopper]:
    """The ``k`` first of ``exact`` among the ``candidates`` first of ``near`` (the half-precision index's order),
    in one query: the index scan in a subquery, the exact order on those rows only."""
    with transaction.atomic(), connection.cursor() as cur:
        set_hnsw(cur, ef_search=ef_search, iterative=True)
        return list(exact.filter(pk__in=near.values("pk")[:candidates]).select_related("user")[:k])


def campaign_audience(
    campaign: Campaign,
    vector: np.ndarray | None,
    *,
    k: int = 100,
    active_within_days: float | None = None,
    registered_only: bool = False,
) -> list[AudienceMember]:
    """The campaign's audience: the consenting shoppers nearest its target ``vector`` (services.campaigns.
    campaign_target gives it; none without one)."""
    if vector is None:
        return []
    return nearest_shoppers(
        vector,
        k=k,
        active_within_days=active_within_days,
        registered_only=registered_only,
        hybrid=hybrid_target(campaign, vector),
    )


def hybrid_target(campaign: Campaign, vector) -> tuple[str, np.ndarray] | None:
    """The campaign in the active interest model's space: its target and its promoted products' factors."""
    from adengine.services.interest_model import active_model

    model = active_model()
    if model is None:
        return None
    k = model.rank
    rows = ProductVector.objects.filter(
        product_id__in=campaign.promoted_products.values("pk"), hybrid_model=model.version, factors__isnull=False
    ).values_list("factors", "popularity")
    got = [(np.asarray(f, np.float32)[:k], float(p)) for f, p in rows]
    factors = np.mean([f for f, _ in got], axis=0).reshape(1, -1) if got else np.zeros((1, k), np.float32)
    pop = np.array([np.mean([p for _, p in got]) if got else 0.0], np.float32)
    content = np.asarray(vector, np.float32).reshape(1, -1)
    return model.version, model.vectors.product_vectors(content, factors, pop)[0]


def why_in_audience(
    shopper: Shopper, vector, *, limit: int = 3, language: str | None = None
) -> list[tuple[str, str, float]]:
    """The shopper's behaviour closest to the target: (kind, product or query, similarity), best first; product
    titles in ``language`` (default: the shop's default language)."""
    adapter = get_adapter()
    lang = language or ad_settings.default_language
    events = list(
        BehaviourEvent.objects.filter(shopper=shopper).order_by("-occurred_at")[: ad_settings.PROFILE_MAX_EVENTS]
    )
    pids = {e.product_id for e in events if e.product_id}
    vecs = dict(ProductVector.objects.filter(product_id__in=pids).values_list("product_id", "embedding"))
    titles = {p.pk: adapter.product_title(p, lang) for p in adapter.products().filter(pk__in=pids)}
    target = np.asarray(vector, np.float32)
    scored: dict[tuple[str, str], float] = {}
    for e in events:
        if e.product_id in vecs and e.product_id in titles:
            key = (profile.LABELS[e.kind], titles[e.product_id])
            scored[key] = max(scored.get(key, -1.0), float(np.asarray(vecs[e.product_id]) @ target))
    for e in events:
        if e.kind == "search" and e.query:
            scored.setdefault((profile.LABELS["search"], e.query), 0.0)
    ranked = sorted(scored.items(), key=lambda kv: -kv[1])[:limit]
    return [(kind, what, sim) for (kind, what), sim in ranked]


def top_interests(shopper: Shopper, *, products: int = 5, categories: int = 3) -> dict:
    """A shopper's interests in words: nearest products and the categories they fall in."""
    from adengine.selectors.vectors import best_products_for

    if shopper.interest_vector is None:
        return {"products": [], "categories": []}
    adapter = get_adapter()
    lang = ad_settings.default_language
    near = best_products_for(shopper, k=20)
    objs = {p.pk: p for p in adapter.products().filter(pk__in=[pk for pk, _ in near])}
    cat_score: dict[str, float] = {}
    for rank, (pk, _) in enumerate(near):
        if pk in objs:
            name = adapter.category_name(adapter.product_category(objs[pk]), lang)
            cat_score[name] = cat_score.get(name, 0.0) + 1.0 / (1 + rank)
    return {
        "products": [
            (adapter.product_title(objs[pk], lang), float(score)) for pk, score in near[:products] if pk in objs
        ],
        "categories": [name for name, _ in sorted(cat_score.items(), key=lambda kv: -kv[1])[:categories]],
    }
