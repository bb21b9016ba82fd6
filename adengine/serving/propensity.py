"""Propensities off the request path: each logged ad's probability of being put in its position, computed from
its slate's logged candidate set and the policy's parameters.

A decision logs every slate's candidate set on the slate's first row (``context["slate"]``: each competing arm's
asset, campaign, Beta posterior, value, relevance, interest and page fit, and the exploration rate, the number
of ads, the page language and hour, and the relevance weight of the context-free policy) and samples the slate
from exactly those (rounded) values (``slate_sampler``), so the distribution the propensity is estimated from is
the one the slate was drawn from. The impression log writes rows with a NaN propensity (unknown yet, as off-policy
evaluation reads NaN); ``fill`` estimates them with ``SERVING_PROPENSITY_DRAWS`` Thompson draws seeded by the
decision (reproducible: the same rows give the same numbers) and writes them. It runs in the strategy queue's
task ``adengine.fill_propensities`` (sent by each web process's log writer with the ids it wrote, and swept by
beat for what a lost task left), in the strategy update before the click model is evaluated, and inline in
``sync`` log mode.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from collections import defaultdict

import numpy as np
from django.db import connection

from adengine.conf import settings as ad_settings
from adengine.models import ClickModel as ClickModelRow
from adengine.models import Impression, Placement

from . import click_model as cm
from .policy import CONTEXTUAL, BetaSampler, propensities, relevance_factor

log = logging.getLogger(__name__)


def groups(campaign_ids) -> np.ndarray:
    """Each arm's group (0, 1, ...) by runs of equal campaign ids, in the order they are logged (the engine's)."""
    g = np.asarray(campaign_ids)
    if len(g) == 0:
        return np.empty(0, dtype=np.int64)
    return np.cumsum(np.r_[0, (g[1:] != g[:-1]).astype(np.int64)])


def slate_sampler(
    cand: dict,
    *,
    policy: str,
    model: cm.ClickModel | None,
    personalised: bool,
    kind: str,
    placement_id: int,
    x_const: np.ndarray | None = None,
) -> tuple[object, np.ndarray, np.ndarray]:
    """The sampler of each arm's CTR, the arms' weights and groups that a logged candidate set was sampled with
    (``x_const``: the decision's features when the caller has them already, computed from the same values)."""
    alpha = np.asarray(cand["a"], dtype=np.float64)
    beta = np.asarray(cand["b"], dtype=np.float64)
    value = np.asarray(cand["v"], dtype=np.float64)
    rel = np.asarray(cand["r"], dtype=np.float64)
    group = groups(cand["g"])
    if policy == CONTEXTUAL:
        if model is None:
            raise ValueError("the contextual policy needs its click model")
        interest = np.full(len(alpha), np.nan) if cand.get("i") is None else np.asarray(cand["i"], np.float64)
        x_const = (
            x_const
            if x_const is not None
            else model.const(
                personalised=personalised,
                kind=kind,
                position=0,
                other_language=bool(cand.get("o", False)),
                hour=float(cand.get("h", 12.0)),
                placement_id=placement_id,
            )
        )
        sampler = model.sampler(
            alpha=alpha, beta=beta, x_const=x_const, relevance=rel, interest=interest, page_fit=np.asarray(cand["p"])
        )
        return sampler, value, group
    return BetaSampler(alpha, beta), value * relevance_factor(rel, float(cand["w"])), group


def seed(decision_id: uuid.UUID | str, first_position: int) -> list[int]:
    """The random seed of one slate's estimate: its decision and the position of its first ad."""
    value = decision_id if isinstance(decision_id, uuid.UUID) else uuid.UUID(str(decision_id))
    return [value.int & (2**64 - 1), value.int >> 64, int(first_position)]


def estimate(
    cand: dict,
    *,
    chosen: list[int],
    decision_id,
    first_position: int,
    policy: str,
    model: cm.ClickModel | None,
    personalised: bool,
    kind: str,
    placement_id: int,
    draws: int | None = None,
) -> np.ndarray:
    """P(arm at its position) for the chosen arms (indices into the candidate set, in slate order)."""
    sampler, weight, group = slate_sampler(
        cand, policy=policy, model=model, personalised=personalised, kind=kind, placement_id=placement_id
    )
    return propensities(
        np.random.default_rng(seed(decision_id, first_position)),
        sampler=sampler,
        weight=weight,
        group=group,
        arms=np.asarray(chosen, dtype=np.int64),
        epsilon=float(cand["e"]),
        draws=int(ad_settings.SERVING_PROPENSITY_DRAWS if draws is None else draws),
    )


class ModelCache:
    """Click models by version (a fitted model never changes; the prior is rebuilt from today's placements)."""

    def __init__(self, *known: cm.ClickModel) -> None:
        self.models: dict[str, cm.ClickModel | None] = {m.version: m for m in known}

    def get(self, version: str | None) -> cm.ClickModel | None:
        if not version:
            return None
        if version not in self.models:
            self.models[version] = self._load(version)
        return self.models[version]

    @staticmethod
    def _load(version: str) -> cm.ClickModel | None:
        row = ClickModelRow.objects.filter(version=version).first()
        if row is not None:
            return cm.ClickModel(
                version=row.version, placements=tuple(row.placements), mean=row.mean, cov=row.cov, base_ctr=row.base_ctr
            )
        if version != "prior":
            return None
        # the prior's placement weights are independent with mean 0: only the decision's own placement enters its
        # draws, so today's placements give the same distribution as those of the day it served
        placements = tuple(sorted(Placement.objects.values_list("pk", flat=True)))
        base = float(ad_settings.SERVING_BASE_CTR)
        mean, precision = cm.prior(
            placements, base_ctr=base, relevance_weight=float(ad_settings.SERVING_RELEVANCE_WEIGHT)
        )
        return cm.ClickModel(version="prior", placements=placements, mean=mean, cov=np.diag(1.0 / precision),
                             base_ctr=base)  # fmt: skip


_COLUMNS = (
    "i.id, i.decision_id, i.position, i.creative_id, i.personalised, i.placement_id, i.policy, i.context, i.served_at"
)


def _rows(where: str, params: list) -> list[tuple]:
    table = Impression._meta.db_table
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT {_COLUMNS} FROM {table} i WHERE {where} AND i.propensity = 'NaN' "
            "AND NOT (i.context ? 'restored') ORDER BY i.decision_id, i.position",
            params,
        )
        return cur.fetchall()


def fill(
    *, impression_ids: list[int] | None = None, since: dt.datetime | None = None, until: dt.datetime | None = None
) -> dict:
    """Estimate and write the propensities still unknown (NaN) of the given impressions, or of those served in
    [since, until); returns how many were filled and how many cannot be (their candidate set, asset or model is
    gone)."""
    if impression_ids is not None:
        if not impression_ids:
            return {"filled": 0, "unknown": 0}
        rows = _rows("i.id = ANY(%s)", [list(map(int, impression_ids))])
    else:
        clauses, params = ["i.served_at >= %s"], [since]
        if until is not None:
            clauses.append("i.served_at < %s")
            params.append(until)
        rows = _rows(" AND ".join(clauses), params)
    updates, unknown = _estimate_all(rows, ModelCache())
    _write(updates)
    return {"filled": len(updates), "unknown": unknown}


def fill_rows(rows: list, *, model: cm.ClickModel | None = None) -> None:
    """Set the propensities of impression rows not written yet (``rows.ImpressionRow``; sync log mode), from their
    slates' candidate sets; ``model`` is the click model that served them."""
    records = [
        (i, r.decision_id, r.position, r.creative_id, r.personalised, r.placement_id, r.policy, r.context, None)
        for i, r in enumerate(rows)
    ]
    updates, _ = _estimate_all(sorted(records, key=lambda t: (str(t[1]), t[2])), ModelCache(*[m for m in [model] if m]))
    for i, value, _ in updates:
        rows[i].propensity = value


def _estimate_all(rows: list[tuple], models: ModelCache) -> tuple[list[tuple[int, float, dt.datetime]], int]:
    """(id, propensity, served_at) of every row whose slate can be estimated, and how many cannot; ``rows`` are
    (id, decision, position, creative, personalised, placement, policy, context, served_at) by decision and
    position."""
    by_decision: dict[object, list[tuple]] = defaultdict(list)
    for row in rows:
        by_decision[row[1]].append(row)
    updates: list[tuple[int, float, dt.datetime]] = []
    unknown = 0
    for decision_id, members in by_decision.items():
        slate: list[tuple] = []
        for row in [*members, None]:  # a row with a candidate set starts a slate
            ctx = None if row is None else (row[7] if isinstance(row[7], dict) else json.loads(row[7]))
            if row is None or "slate" in ctx:
                if slate:
                    found = _slate_propensities(decision_id, slate, models)
                    unknown += len(slate) - len(found)
                    updates.extend(found)
                slate = []
            if row is not None:
                slate.append((row, ctx))
    return updates, unknown


def _slate_propensities(decision_id, slate: list[tuple], models: ModelCache) -> list[tuple[int, float, dt.datetime]]:
    first, ctx = slate[0]
    cand = ctx.get("slate")
    if cand is None:  # rows whose slate's first row is not among them (written apart, or gone)
        return []
    where = {c: j for j, c in enumerate(cand.get("c") or [])}
    chosen = [where.get(row[3]) for row, _ in slate]
    if any(j is None for j in chosen):
        return []
    policy = first[6]
    model = models.get(ctx.get("model")) if policy == CONTEXTUAL else None
    if policy == CONTEXTUAL and model is None:
        return []
    try:
        p = estimate(
            cand, chosen=chosen, decision_id=decision_id, first_position=first[2], policy=policy, model=model,
            personalised=bool(first[4]), kind=ctx.get("kind", ""), placement_id=first[5],
        )  # fmt: skip
    except (KeyError, ValueError, TypeError):
        log.warning("propensities of decision %s cannot be estimated from its logged slate", decision_id,
                    exc_info=True)  # fmt: skip
        return []
    return [(row[0], float(value), row[8]) for (row, _), value in zip(slate, p, strict=True)]


def _write(updates: list[tuple[int, float, dt.datetime]]) -> None:
    table = Impression._meta.db_table
    with connection.cursor() as cur:
        for start in range(0, len(updates), 1000):
            chunk = updates[start : start + 1000]
            values = ", ".join(["(%s::bigint, %s::float8, %s::timestamptz)"] * len(chunk))
            # served_at too: lets a log partitioned by day find each row's partition
            cur.execute(
                f"UPDATE {table} AS i SET propensity = v.p FROM (VALUES {values}) AS v(id, p, served_at) "
                "WHERE i.id = v.id AND i.served_at = v.served_at AND i.propensity = 'NaN'",
                [x for u in chunk for x in u],
            )
