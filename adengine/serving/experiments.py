"""Experiment arms: a stable assignment of shoppers, and the serving parameters each arm uses."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from adengine.conf import settings as ad_settings

HOLDOUT = "holdout"


@dataclass(frozen=True)
class ExperimentEntry:
    id: int
    name: str
    placement_id: int | None
    holdout: float
    salt: str
    arms: tuple[dict, ...]


@dataclass(frozen=True)
class Params:
    """The serving parameters of one decision: the settings, or an experiment arm's overrides."""

    epsilon: float
    relevance_weight: float
    candidates: int
    per_campaign: int
    policy: str = "contextual"  # "contextual" (the click model) or "thompson" (context-free)
    floor: float | None = None  # an arm's relevance floor for every page (None: the placement's / page kind's)
    creatives: frozenset[int] | None = None
    experiment: int | None = None
    arm: str | None = None
    holdout: bool = False
    extra: dict = field(default_factory=dict)


def default_params() -> Params:
    return Params(
        epsilon=float(ad_settings.SERVING_EXPLORATION),
        relevance_weight=float(ad_settings.SERVING_RELEVANCE_WEIGHT),
        candidates=int(ad_settings.SERVING_CANDIDATES),
        per_campaign=max(1, int(ad_settings.SERVING_ASSETS_PER_CAMPAIGN)),
        policy=str(ad_settings.SERVING_POLICY),
    )


def unit_hash(salt: str, unit: str) -> float:
    """A uniform number in [0, 1) that depends only on the experiment's salt and the unit: stable across
    requests, processes and restarts."""
    digest = hashlib.sha256(f"{salt}:{unit}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign(experiment: ExperimentEntry, unit: str) -> str:
    """The arm (or "holdout") of a unit (a shopper) in an experiment."""
    u = unit_hash(experiment.salt, unit)
    if u < experiment.holdout:
        return HOLDOUT
    u = (u - experiment.holdout) / (1.0 - experiment.holdout)
    total = sum(float(a.get("weight", 1)) for a in experiment.arms)
    edge = 0.0
    for arm in experiment.arms:
        edge += float(arm.get("weight", 1)) / total
        if u < edge:
            return arm["name"]
    return experiment.arms[-1]["name"]


def params_for(experiment: ExperimentEntry | None, unit: str | None) -> Params:
    """The parameters a decision uses: the arm's overrides when the shopper is in a running experiment."""
    base = default_params()
    if experiment is None or unit is None:
        return base
    name = assign(experiment, unit)
    if name == HOLDOUT:
        return Params(**{**base.__dict__, "experiment": experiment.id, "arm": HOLDOUT, "holdout": True})
    arm = next(a for a in experiment.arms if a["name"] == name)
    s = arm.get("settings", {})
    return Params(
        epsilon=float(s.get("SERVING_EXPLORATION", base.epsilon)),
        relevance_weight=float(s.get("SERVING_RELEVANCE_WEIGHT", base.relevance_weight)),
        candidates=int(s.get("SERVING_CANDIDATES", base.candidates)),
        per_campaign=max(1, int(s.get("SERVING_ASSETS_PER_CAMPAIGN", base.per_campaign))),
        policy=str(s.get("SERVING_POLICY", base.policy)),
        floor=float(s["RELEVANCE_FLOOR"]) if s.get("RELEVANCE_FLOOR") is not None else None,
        creatives=frozenset(arm["creatives"]) if arm.get("creatives") is not None else None,
        experiment=experiment.id,
        arm=name,
    )
