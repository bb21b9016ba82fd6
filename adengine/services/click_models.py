"""The click model's life cycle, run by the strategy job: fit a candidate on the recent impression log, evaluate it
against the live model off-policy on held-out decisions, and switch it on only when it is clearly better.

1. **Fit** (``fit_candidate``): the most recent impressions (``CLICK_MODEL_WINDOW_DAYS``, at most
   ``CLICK_MODEL_MAX_IMPRESSIONS``) of the decisions *not* held out (a stable hash of the decision id puts
   ``CLICK_MODEL_HOLDOUT`` of them aside), each with the features known when it was served (logged with it) and
   whether it was clicked; a Laplace-approximated Bayesian logistic regression (``serving.click_model.fit``)
   from the prior. Fewer than ``CLICK_MODEL_MIN_CLICKS`` clicks: the live model (or the prior) stays, and the
   note says so.
2. **Evaluate** (``evaluate``): on the held-out decisions' sponsored slates (their candidate sets were logged with
   every arm's inputs), each policy's probability of every logged choice at its position is estimated by the
   same Monte-Carlo as serving's propensities; SNIPW and DR (the candidate's model as reward model) estimate
   each policy's click rate per impression, with bootstrap intervals (``adengine.ope``).
3. **Gate**: the candidate goes live only when, for both estimators, the lower end of the paired interval of
   its estimate minus the live model's (both on the same bootstrap resamples of the held-out records, so the
   click noise they share cancels) is above zero -- its lower bound beats the live estimate; otherwise it is kept
   as "refused" with its figures. Too few held-out records (or none
   with propensities): never switched on.

Every fitted candidate is a ``ClickModel`` row (the admin lists them with their figures); every outcome, a kept
prior included, is the strategy state's note (shown above the admin's list of click models).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from django.conf import settings as django_settings
from django.db import connection, transaction
from django.utils import timezone

from adengine.conf import settings as ad_settings
from adengine.db import try_advisory_lock
from adengine.models import AdEvent, ClickModel, Impression, StrategyState
from adengine.ope import BanditLog, LogError, compare, evaluate
from adengine.serving import click_model as cm
from adengine.serving import get_backend
from adengine.serving.builder import live_click_model
from adengine.serving.policy import slate_probabilities
from adengine.serving.propensity import fill as fill_propensities

log = logging.getLogger(__name__)

ESTIMATORS = ("snipw", "dr")  # the gate's: DM is biased by its own model, IPW is SNIPW's noisier twin

_FIT_LOCK = 0x61646331  # "adc1": pg advisory lock id of the click model fit


@dataclass
class LoggedImpressions:
    """The training window's impressions as arrays (one entry per impression)."""

    decision: np.ndarray  # uuid strings
    creative: np.ndarray
    relevance: np.ndarray
    position: np.ndarray
    other_language: np.ndarray
    personalised: np.ndarray
    placement: np.ndarray
    hour: np.ndarray
    asset_ctr: np.ndarray
    page_fit: np.ndarray
    interest: np.ndarray  # NaN: not personalised
    kind: np.ndarray
    propensity: np.ndarray  # NaN: none
    house: np.ndarray
    clicked: np.ndarray
    slates: dict[int, dict]  # row index of a slate's first row -> its logged candidate set (``load_slates``)
    has_slate: np.ndarray | None = None  # the row is a slate's first (its candidate set was logged)
    ids: np.ndarray | None = None  # impression ids

    def __len__(self) -> int:
        return len(self.clicked)

    def design(self, placements: tuple[int, ...], base_ctr: float, idx=slice(None)) -> np.ndarray:
        return cm.design(
            placements,
            asset_ctr=self.asset_ctr[idx],
            relevance=self.relevance[idx],
            interest=self.interest[idx],
            page_fit=self.page_fit[idx],
            personalised=self.personalised[idx],
            kind=self.kind[idx],
            position=self.position[idx],
            other_language=self.other_language[idx],
            hour=self.hour[idx],
            placement_id=self.placement[idx],
            base_ctr=base_ctr,
        )


def held_out(decisions: np.ndarray, share: float) -> np.ndarray:
    """Which decisions are held out for the gate: the (random) decision id's low bits below ``share``."""
    return np.array([uuid.UUID(d).int % 10_000 < share * 10_000 for d in decisions], dtype=bool)


def load(*, since: dt.datetime, until: dt.datetime, limit: int) -> LoggedImpressions:
    """The most recent ``limit`` impressions served in [since, until) that carry their model features (their
    slates' candidate sets are read separately, for the held-out ones only: ``load_slates``)."""
    imp, ev = Impression._meta.db_table, AdEvent._meta.db_table
    counted = list(AdEvent.COUNTED)
    sql = f"""
        SELECT i.decision_id, i.creative_id, i.relevance, i.position, i.language, i.personalised, i.placement_id,
               EXTRACT(HOUR FROM i.served_at AT TIME ZONE %s) + EXTRACT(MINUTE FROM i.served_at AT TIME ZONE %s) / 60,
               (i.context->>'asset_ctr')::float8, (i.context->>'page_relevance')::float8,
               (i.context->>'interest')::float8, i.context->>'kind', i.propensity,
               coalesce((i.context->>'house')::boolean, false),
               EXISTS (SELECT 1 FROM {ev} e WHERE e.impression_id = i.id AND e.impression_served_at = i.served_at
                       AND e.kind = %s
                       AND e.status IN ({", ".join(["%s"] * len(counted))})),
               i.context ? 'slate', i.id
          FROM {imp} i
         WHERE i.served_at >= %s AND i.served_at < %s AND i.context ? 'asset_ctr'
         ORDER BY i.id DESC
         LIMIT %s
    """
    tz = django_settings.TIME_ZONE if django_settings.USE_TZ else "UTC"
    with connection.cursor() as cur:
        cur.execute(sql, [tz, tz, AdEvent.Kind.CLICK, *counted, since, until, int(limit)])
        rows = cur.fetchall()
    default = ad_settings.default_language
    cols = list(zip(*rows, strict=True)) if rows else [()] * 17

    def f64(col, fill=np.nan) -> np.ndarray:
        return np.array([fill if v is None else float(v) for v in col], dtype=np.float64)

    return LoggedImpressions(
        decision=np.array([str(d) for d in cols[0]], dtype=object),
        creative=np.array([-1 if v is None else v for v in cols[1]], dtype=np.int64),
        relevance=f64(cols[2], 0.5),
        position=np.array(cols[3], dtype=np.int64),
        other_language=np.array([lang != default for lang in cols[4]], dtype=bool),
        personalised=np.array(cols[5], dtype=bool),
        placement=np.array(cols[6], dtype=np.int64),
        hour=f64(cols[7], 12.0),
        asset_ctr=f64(cols[8], float(ad_settings.SERVING_BASE_CTR)),
        page_fit=f64(cols[9], 0.0),
        interest=f64(cols[10]),
        kind=np.array([k or "" for k in cols[11]], dtype=object),
        propensity=f64(cols[12]),
        house=np.array(cols[13], dtype=bool),
        clicked=np.array(cols[14], dtype=np.float64),
        slates={},
        has_slate=np.array(cols[15], dtype=bool),
        ids=np.array(cols[16], dtype=np.int64),
    )


def load_slates(data: LoggedImpressions, rows: np.ndarray, *, max_slates: int) -> None:
    """Read the logged candidate sets of the newest ``max_slates`` slates among ``rows`` into ``data.slates``."""
    # rows are newest first; house slates log their candidates too (for their propensities): not gated
    firsts = [i for i in sorted(rows.tolist()) if data.has_slate[i] and not data.house[i]][:max_slates]
    if not firsts:
        return
    row_of = {int(data.ids[i]): i for i in firsts}
    with connection.cursor() as cur:
        cur.execute(f"SELECT id, context->'slate' FROM {Impression._meta.db_table} WHERE id = ANY(%s)", [list(row_of)])
        for pk, value in cur.fetchall():
            data.slates[row_of[pk]] = value if isinstance(value, dict) else json.loads(value)


def fit_candidate(data: LoggedImpressions, train: np.ndarray, *, version: str) -> cm.ClickModel:
    """The posterior of the click model on the training rows, from the prior."""
    base = float(ad_settings.SERVING_BASE_CTR)
    placements = tuple(sorted(set(data.placement[train].tolist())))
    mean, precision = cm.prior(placements, base_ctr=base, relevance_weight=float(ad_settings.SERVING_RELEVANCE_WEIGHT))
    fitted = cm.fit(
        data.design(placements, base, train), data.clicked[train], prior_mean=mean, prior_precision=precision
    )
    return cm.ClickModel(version=version, placements=placements, mean=fitted.mean, cov=fitted.cov, base_ctr=base)


@dataclass
class GateLog:
    """Held-out sponsored impressions as an OPE log: each record is one (slate, position)."""

    log: BanditLog
    slates: list[tuple[int, dict, list[tuple[int, int]]]]  # (first row, candidate set, [(record, row)])


def gate_log(data: LoggedImpressions, rows: np.ndarray, *, max_slates: int) -> GateLog | None:
    """The held-out slates' records (newest first, at most ``max_slates``); None when there are none."""
    by_decision: dict[str, list[int]] = defaultdict(list)
    for i in rows.tolist():
        if not data.house[i]:
            by_decision[data.decision[i]].append(i)
    slates = []
    action, reward, pscore, position = [], [], [], []
    for first in sorted((i for i in rows.tolist() if i in data.slates), key=int):  # newest first (id DESC)
        if len(slates) >= max_slates:
            break
        cand = data.slates[first]
        members = by_decision.get(data.decision[first], [])
        creative_ids = cand.get("c") or []
        if not members or any(not np.isfinite(data.propensity[i]) for i in members):
            continue
        where = {c: j for j, c in enumerate(creative_ids)}
        if any(int(data.creative[i]) not in where for i in members):
            continue
        records = []
        for i in members:
            records.append((len(action), i))
            action.append(where[int(data.creative[i])])
            reward.append(data.clicked[i])
            pscore.append(min(1.0, data.propensity[i]))
            position.append(data.position[i])
        slates.append((first, cand, records))
    if not action:
        return None
    width = max(len(c.get("c") or []) for _, c, _ in slates)
    bandit = BanditLog(
        action=np.array(action, dtype=np.int64),
        reward=np.array(reward, dtype=np.float64),
        pscore=np.array(pscore, dtype=np.float64),
        position=np.array(position, dtype=np.int64),
        n_actions=width,
    )
    return GateLog(log=bandit, slates=slates)


def _slate_inputs(cand: dict):
    alpha = np.asarray(cand["a"], dtype=np.float64)
    beta = np.asarray(cand["b"], dtype=np.float64)
    group = np.unique(np.asarray(cand["g"]), return_inverse=True)[1]
    interest = np.full(len(alpha), np.nan) if cand.get("i") is None else np.asarray(cand["i"], dtype=np.float64)
    return alpha, beta, group, np.asarray(cand["r"]), interest, np.asarray(cand["p"]), np.asarray(cand["v"])


def policy_matrices(
    model: cm.ClickModel, reward_model: cm.ClickModel, data: LoggedImpressions, gate: GateLog, *, draws: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per record: ``model``'s policy's probability of each candidate at the record's position, and the reward
    model's predicted CTR of each candidate there."""
    rng = np.random.default_rng(seed)
    n, width = len(gate.log), gate.log.n_actions
    policy = np.zeros((n, width))
    q_hat = np.zeros((n, width))
    for first, cand, records in gate.slates:
        alpha, beta, group, rel, interest, page_fit, weight = _slate_inputs(cand)
        decision = {
            "personalised": bool(data.personalised[first]),
            "kind": data.kind[first],
            "other_language": bool(data.other_language[first]),
            "hour": float(data.hour[first]),
            "placement_id": int(data.placement[first]),
        }
        sampler = model.sampler(
            alpha=alpha, beta=beta, x_const=model.const(position=0, **decision), relevance=rel, interest=interest,
            page_fit=page_fit,
        )  # fmt: skip
        probs = slate_probabilities(
            rng, sampler=sampler, weight=weight, group=group, n=int(cand["n"]), epsilon=float(cand["e"]), draws=draws
        )
        mean_ctr = alpha / (alpha + beta)
        for record, row in records:
            k = int(data.position[row])
            if k >= len(probs):
                continue
            policy[record, : len(alpha)] = probs[k]
            x = reward_model.const(position=k, **decision)
            q_hat[record, : len(alpha)] = cm.sigmoid(reward_model.mean_logit(x, mean_ctr, rel, interest, page_fit))
    # a record whose position the policy never fills keeps a valid (uniform) row, with no weight on the logged arm
    empty = policy.sum(axis=1) == 0
    policy[empty] = 1.0 / width
    return policy, q_hat


def evaluate_models(
    candidate: cm.ClickModel, live: cm.ClickModel, data: LoggedImpressions, gate: GateLog, *, seed: int = 0
) -> dict:
    """SNIPW and DR estimates (with intervals) of both policies' CTR per sponsored impression on the held-out log,
    and whether the candidate clears the gate."""
    draws = int(ad_settings.CLICK_MODEL_GATE_DRAWS)
    alpha = 1.0 - float(ad_settings.CLICK_MODEL_GATE_CONFIDENCE)
    out: dict = {"records": len(gate.log), "slates": len(gate.slates), "clicks": int(gate.log.reward.sum())}
    out["observed_ctr"] = float(gate.log.reward.mean())
    matrices = {}
    for name, model in (("candidate", candidate), ("live", live)):
        matrices[name] = policy, q_hat = policy_matrices(model, candidate, data, gate, draws=draws, seed=seed)
        found = evaluate(gate.log, policy, q_hat=q_hat, estimators=ESTIMATORS, n_bootstrap=500, alpha=alpha,
                         seed=seed)  # fmt: skip
        out[name] = {k: v.as_dict() for k, v in found.items()}
    # the gate: the candidate minus the live policy on the same resampled records (paired, so the click noise both
    # estimates share cancels); the lower end must be above zero for every estimator
    paired = compare(gate.log, matrices["candidate"][0], matrices["live"][0], q_hat=matrices["candidate"][1],
                     estimators=ESTIMATORS, n_bootstrap=500, alpha=alpha, seed=seed)  # fmt: skip
    out["difference"] = {k: v["difference"].as_dict() for k, v in paired.items()}
    out["switch"] = all(out["difference"][e]["ci_low"] > 0 for e in ESTIMATORS)
    return out


def _pct(x: float) -> str:
    return f"{100 * x:.2f} %"


def refit(*, now: dt.datetime | None = None, force: bool = False) -> dict:
    """Fit a candidate click model and gate it (when due: ``CLICK_MODEL_REFIT_SECONDS`` since the last try, or
    ``force``). Returns what happened, also kept as the strategy state's note."""
    now = now or timezone.now()
    state, _ = StrategyState.objects.get_or_create(key="default")
    due = state.click_model_at is None or (now - state.click_model_at).total_seconds() >= float(
        ad_settings.CLICK_MODEL_REFIT_SECONDS
    )
    if not (force or due):
        return {"click_model": "not due"}
    with try_advisory_lock(_FIT_LOCK) as got:
        if not got:
            return {"click_model": "another process is fitting"}
        result = _refit(now)
    StrategyState.objects.filter(pk=state.pk).update(click_model_at=now, click_model_note=result["note"])
    log.info("click model: %s", result["note"])
    return result


def _refit(now: dt.datetime) -> dict:
    since = now - dt.timedelta(days=float(ad_settings.CLICK_MODEL_WINDOW_DAYS))
    # propensities not filled yet (their task still queued, or lost while the broker was down): computed now from
    # the logged slates, so the gate reads every held-out slate whose propensity can be known
    fill_propensities(since=since, until=now)
    data = load(since=since, until=now, limit=int(ad_settings.CLICK_MODEL_MAX_IMPRESSIONS))
    holdout = held_out(data.decision, float(ad_settings.CLICK_MODEL_HOLDOUT))
    train = ~holdout
    clicks = int(data.clicked[train].sum())
    min_clicks = int(ad_settings.CLICK_MODEL_MIN_CLICKS)
    live_row = ClickModel.objects.filter(status=ClickModel.Status.LIVE).first()
    keeping = f"the live model {live_row.version}" if live_row else "the prior (the context-free policy)"
    if clicks < min_clicks:
        note = (
            f"kept {keeping}: {clicks} click(s) in {int(train.sum())} impressions of the last "
            f"{ad_settings.CLICK_MODEL_WINDOW_DAYS} days, fewer than CLICK_MODEL_MIN_CLICKS ({min_clicks})"
        )
        return {"click_model": "kept", "note": note}
    version = timezone.localtime(now).strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:4]
    candidate = fit_candidate(data, train, version=version)
    live = live_click_model(candidate.placements)
    row = ClickModel(
        version=version,
        created_at=now,
        placements=list(candidate.placements),
        mean=candidate.mean.tolist(),
        cov=candidate.cov.tolist(),
        base_ctr=candidate.base_ctr,
        impressions=int(train.sum()),
        clicks=clicks,
    )
    max_slates = int(ad_settings.CLICK_MODEL_GATE_SLATES)
    load_slates(data, np.flatnonzero(holdout), max_slates=max_slates)
    gate = gate_log(data, np.flatnonzero(holdout), max_slates=max_slates)
    min_records = int(ad_settings.CLICK_MODEL_GATE_MIN_RECORDS)
    evaluation: dict = {
        "weights": cm.summary(candidate.mean, candidate.cov, candidate.names),
        "live_version": live.version,
    }
    if gate is None or len(gate.log) < min_records:
        found = 0 if gate is None else len(gate.log)
        row.status = ClickModel.Status.REFUSED
        row.decision = (
            f"not evaluated, so not switched on: {found} held-out sponsored impression(s) with propensities and "
            f"candidate sets, fewer than CLICK_MODEL_GATE_MIN_RECORDS ({min_records}); {keeping} stays"
        )
    else:
        try:
            found = evaluate_models(candidate, live, data, gate, seed=int(now.timestamp()) % 2**31)
        except LogError as exc:
            found = None
            row.status = ClickModel.Status.REFUSED
            row.decision = f"could not be evaluated ({exc}); {keeping} stays"
        if found is not None:
            evaluation.update(found)
            cand, cur = found["candidate"], found["live"]
            diff = found["difference"]
            figures = (
                "; ".join(
                    f"{e.upper()} {_pct(cand[e]['value'])} against {_pct(cur[e]['value'])}, difference "
                    f"{_pct(diff[e]['value'])} [{_pct(diff[e]['ci_low'])}, {_pct(diff[e]['ci_high'])}]"
                    for e in ESTIMATORS
                )
                + f" on {found['records']} held-out impressions"
            )
            if found["switch"]:
                row.status = ClickModel.Status.LIVE
                row.switched_at = now
                row.decision = f"switched on, replacing {keeping}: it beats the live model beyond the noise ({figures})"
            else:
                row.status = ClickModel.Status.REFUSED
                row.decision = (
                    f"refused, {keeping} stays: its gain is not clear of the noise (an interval of the difference "
                    f"reaches zero: {figures})"
                )
    row.evaluation = evaluation
    with transaction.atomic():
        if row.status == ClickModel.Status.LIVE:
            ClickModel.objects.filter(status=ClickModel.Status.LIVE).update(status=ClickModel.Status.RETIRED)
        row.save()
    if row.status == ClickModel.Status.LIVE:  # this process serves it at once; others at their next index check
        transaction.on_commit(lambda: get_backend().campaigns_changed(()))
    return {"click_model": row.status, "version": version, "note": f"{version}: {row.decision}"}
