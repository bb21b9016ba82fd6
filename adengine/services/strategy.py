"""The periodic strategy update: from what happened since the last run, learn and roll up statistics.

Incremental from a watermark (the last impression, event and conversion ids read), in one transaction
with it, so running it twice changes nothing the second time. Rows newer than ``STRATEGY_LAG_SECONDS``
are left for the next run: ids are assigned at insert, and a transaction that commits late must not
be skipped.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections import defaultdict

import numpy as np
from django.db import connection, transaction
from django.db.models import Count, F, Max, Q, Sum
from django.db.models.expressions import RawSQL
from django.db.models.functions import TruncHour
from django.utils import timezone

from adengine import clock
from adengine.conf import settings as ad_settings
from adengine.models import (
    AdEvent,
    Campaign,
    Conversion,
    Creative,
    DailyStats,
    HourlyStats,
    Impression,
    StrategyState,
)
from adengine.selectors.performance import arm_sql
from adengine.services.budgets import daily_plan
from adengine.serving.context import CLOSE_RELEVANCE

log = logging.getLogger(__name__)

COUNTERS = ("impressions", "views", "clicks", "conversions", "spend", "revenue")
# the experiment arm of an impression (joined as its own table in the three log queries), as performance reads it
ARM = RawSQL(arm_sql(Impression._meta.db_table), [])


def _new_range(model, state_id: int, time_field: str, cutoff: dt.datetime) -> tuple[int, int | None]:
    top = model.objects.filter(pk__gt=state_id, **{f"{time_field}__lt": cutoff}).aggregate(m=Max("id"))["m"]
    return state_id, top


CONVERSION_KEY = ("h", "campaign_id", "impression__creative_id", "impression__placement_id", "arm")


def conversion_keys(conversions):
    """The conversions' roll-up keys (hour, campaign, creative, placement, arm), as values rows."""
    return conversions.annotate(h=TruncHour("ordered_at"), arm=ARM).values(*CONVERSION_KEY)


def shop_day(hour: dt.datetime) -> dt.date:
    """The shop's day (TIME_ZONE) of an hour of the roll-up: the day of its row in the daily roll-up."""
    return timezone.localtime(hour, timezone.get_default_timezone()).date()


def daily_from(source: str) -> str:
    """SQL adding the rows of ``source`` (hour, campaign_id, placement_id and the counters) to the daily roll-up,
    summed by (campaign, shop day, placement), created when missing (``%(day_tz)s``: the shop's time zone)."""
    daily = DailyStats._meta.db_table
    return (
        f"INSERT INTO {daily} (day, campaign_id, placement_id, {', '.join(COUNTERS)}) "
        f"SELECT (hour AT TIME ZONE %(day_tz)s)::date, campaign_id, placement_id, "
        f"{', '.join(f'sum({c})' for c in COUNTERS)} FROM ({source}) AS hours GROUP BY 1, 2, 3 "
        "ON CONFLICT (campaign_id, day, placement_id) DO UPDATE SET "
        + ", ".join(f"{c} = {daily}.{c} + EXCLUDED.{c}" for c in COUNTERS)
    )


@transaction.atomic
def rebuild_daily_rollup() -> int:
    """Fill the daily roll-up again from the hourly one, by the shop's days under the current ``TIME_ZONE`` (after
    changing it; migration 0025 fills it the same way), the hourly one locked against writes meanwhile. Returns
    the number of daily rows."""
    with connection.cursor() as cur:
        cur.execute(f"LOCK TABLE {HourlyStats._meta.db_table} IN SHARE MODE")
        cur.execute(f"DELETE FROM {DailyStats._meta.db_table}")
        cur.execute(
            daily_from(f"SELECT * FROM {HourlyStats._meta.db_table}"),
            {"day_tz": timezone.get_default_timezone_name()},
        )
        return cur.rowcount


def add_to_rollup(rows: dict[tuple, dict]) -> None:
    """Add counts to the hourly rows, keyed (hour, campaign, creative, placement, arm), and to their days' rows of
    the daily roll-up, created when missing, in two statements per batch; a row's missing counters add nothing."""
    table = HourlyStats._meta.db_table
    items = list(rows.items())
    for start in range(0, len(items), 500):
        batch = items[start : start + 500]
        values, params = [], []
        for (hour, campaign, creative, placement, arm), c in batch:
            values.append("(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)")
            params += [hour, campaign, creative, placement, arm, *(c.get(name, 0) for name in COUNTERS)]
        with connection.cursor() as cur:
            cur.execute(
                f"INSERT INTO {table} (hour, campaign_id, creative_id, placement_id, arm, impressions, views, clicks, "
                f"conversions, spend, revenue) VALUES {', '.join(values)} "
                "ON CONFLICT (hour, campaign_id, creative_id, placement_id, arm) DO UPDATE SET "
                + ", ".join(f"{c} = {table}.{c} + EXCLUDED.{c}" for c in COUNTERS),
                params,
            )
            columns = {"hour": "timestamptz", "campaign_id": "bigint", "placement_id": "bigint"}
            columns.update({c: "numeric" for c in COUNTERS})
            arrays = ", ".join(f"%({name})s::{kind}[]" for name, kind in columns.items())
            rows_by_hour = [
                (hour, campaign, placement, *(c.get(name, 0) for name in COUNTERS))
                for (hour, campaign, _creative, placement, _arm), c in batch
            ]
            arrays_params = dict(zip(columns, (list(col) for col in zip(*rows_by_hour, strict=True)), strict=True))
            cur.execute(
                daily_from(f"SELECT * FROM unnest({arrays}) AS v({', '.join(columns)})"),
                {**arrays_params, "day_tz": timezone.get_default_timezone_name()},
            )


def _hour(column: str) -> str:
    """SQL for the shop-time hour of ``column``, as ``TruncHour`` buckets it (``%(tz)s``: the current time zone)."""
    return f"(date_trunc('hour', {column} AT TIME ZONE %(tz)s) AT TIME ZONE %(tz)s)"


NEW_ROWS = "adengine_strategy_new"  # temporary table of one update's roll-up rows (dropped at commit)


def _collect_new_rows(*, imp: tuple[int, int], ev: tuple[int, int], conv: tuple[int, int]) -> None:
    """Aggregate the new impressions, events and conversions into NEW_ROWS, one row per roll-up key, in SQL.

    An event is joined to its impression on (id, served_at), the log's partition key, and the impressions are
    bounded by the first and last ``impression_served_at`` of the new events, as constants: the plan reads only the
    partitions of those days (joined on impression_id alone, PostgreSQL hash-joined a few thousand new events
    against every day of a 60-day log: 26-34 s for 20,000 events in 50 million impressions).
    """
    imp_t, ev_t, conv_t = (m._meta.db_table for m in (Impression, AdEvent, Conversion))
    arm = arm_sql("i")
    counted = [str(s) for s in AdEvent.COUNTED]
    keys = "1, 2, 3, 4, 5"
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT min(impression_served_at), max(impression_served_at) FROM {ev_t} WHERE id > %s AND id <= %s",
            [ev[0], ev[1]],
        )
        ev_from, ev_to = cur.fetchone()
        if ev_from is None:  # no new event: an empty span
            ev_from = ev_to = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        cur.execute(f"DROP TABLE IF EXISTS {NEW_ROWS}")
        cur.execute(
            f"""
            CREATE TEMPORARY TABLE {NEW_ROWS} ON COMMIT DROP AS
            SELECT hour, campaign_id, creative_id, placement_id, arm, sum(impressions)::int AS impressions,
                   sum(views)::int AS views, sum(clicks)::int AS clicks, sum(conversions)::int AS conversions,
                   sum(spend) AS spend, sum(revenue) AS revenue
            FROM (
                SELECT {_hour("i.served_at")} AS hour, i.campaign_id, i.creative_id, i.placement_id, {arm} AS arm,
                       count(*) AS impressions, 0 AS views, 0 AS clicks, 0 AS conversions, 0::numeric AS spend,
                       0::numeric AS revenue
                FROM {imp_t} i WHERE i.id > %(imp_lo)s AND i.id <= %(imp_hi)s GROUP BY {keys}
                UNION ALL
                SELECT {_hour("e.occurred_at")}, e.campaign_id, i.creative_id, i.placement_id, {arm}, 0,
                       count(*) FILTER (WHERE e.kind = %(view)s AND e.status = ANY(%(counted)s)),
                       count(*) FILTER (WHERE e.kind = %(click)s AND e.status = ANY(%(counted)s)), 0,
                       COALESCE(sum(e.charge), 0), 0
                FROM {ev_t} e JOIN {imp_t} i ON i.id = e.impression_id AND i.served_at = e.impression_served_at
                     AND i.served_at >= %(ev_from)s AND i.served_at <= %(ev_to)s
                WHERE e.id > %(ev_lo)s AND e.id <= %(ev_hi)s AND e.impression_served_at >= %(ev_from)s
                      AND e.impression_served_at <= %(ev_to)s GROUP BY {keys}
                UNION ALL
                SELECT {_hour("c.ordered_at")}, c.campaign_id, i.creative_id, i.placement_id, {arm}, 0, 0, 0,
                       count(*), 0, COALESCE(sum(c.revenue), 0)
                FROM {conv_t} c JOIN {imp_t} i ON i.id = c.impression_id
                WHERE c.id > %(conv_lo)s AND c.id <= %(conv_hi)s AND c.reversed_at IS NULL GROUP BY {keys}
            ) parts
            GROUP BY {keys}
            """,
            {
                "tz": timezone.get_current_timezone_name(),
                "imp_lo": imp[0],
                "imp_hi": imp[1],
                "ev_lo": ev[0],
                "ev_hi": ev[1],
                "ev_from": ev_from,
                "ev_to": ev_to,
                "conv_lo": conv[0],
                "conv_hi": conv[1],
                "view": AdEvent.Kind.VIEW.value,
                "click": AdEvent.Kind.CLICK.value,
                "counted": counted,
            },
        )


def _apply_new_rows(now: dt.datetime) -> tuple[dict, list[int]]:
    """Add NEW_ROWS to the hourly and daily roll-ups, the assets' and the campaigns' counters; the totals and the
    campaigns."""
    stats, creatives, campaigns = (m._meta.db_table for m in (HourlyStats, Creative, Campaign))
    columns = "hour, campaign_id, creative_id, placement_id, arm, " + ", ".join(COUNTERS)
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT COALESCE(sum(impressions), 0), COALESCE(sum(views), 0), COALESCE(sum(clicks), 0), "
            f"COALESCE(sum(conversions), 0), array_agg(DISTINCT campaign_id) FROM {NEW_ROWS}"
        )
        imps, views, clicks, conversions, touched = cur.fetchone()
        cur.execute(
            f"INSERT INTO {stats} ({columns}) SELECT {columns} FROM {NEW_ROWS} "
            "ON CONFLICT (hour, campaign_id, creative_id, placement_id, arm) DO UPDATE SET "
            + ", ".join(f"{c} = {stats}.{c} + EXCLUDED.{c}" for c in COUNTERS)
        )
        # the same rows by day, in the same transaction: the daily roll-up always equals the hourly one by day
        cur.execute(daily_from(f"SELECT * FROM {NEW_ROWS}"), {"day_tz": timezone.get_default_timezone_name()})
        cur.execute(
            f"""
            UPDATE {creatives} cr SET served = cr.served + n.impressions, clicked = cr.clicked + n.clicks
            FROM (SELECT creative_id, sum(impressions) AS impressions, sum(clicks) AS clicks FROM {NEW_ROWS}
                  WHERE creative_id IS NOT NULL GROUP BY creative_id) n
            WHERE cr.id = n.creative_id
            """
        )
        cur.execute(
            f"""
            UPDATE {campaigns} c SET clicked = c.clicked + n.clicks, converted = c.converted + n.conversions,
                attributed_revenue = c.attributed_revenue + n.revenue
            FROM (SELECT campaign_id, sum(clicks) AS clicks, sum(conversions) AS conversions, sum(revenue) AS revenue
                  FROM {NEW_ROWS} GROUP BY campaign_id) n
            WHERE c.id = n.campaign_id
            """
        )
    counts = {"impressions": int(imps), "views": int(views), "clicks": int(clicks), "conversions": int(conversions)}
    return counts, sorted(touched or [])


def _update_posteriors(campaign_ids: list[int], now: dt.datetime) -> None:
    """Each approved headline's CTR posterior (prior from its audience-fit score within the campaign and
    language, plus its impressions and clicks) and each campaign's conversion posterior, in two statements.

    The prior is ``serving.policy.prior_from_scores`` written in SQL over window partitions (campaign, language),
    operation for operation, so the same floating-point values come out; the posterior is ``learning.posteriors``.
    """
    creatives, campaigns = Creative._meta.db_table, Campaign._meta.db_table
    params = {
        "ids": list(campaign_ids),
        "base": float(ad_settings.SERVING_BASE_CTR),
        "strength": float(ad_settings.SERVING_PRIOR_STRENGTH),
        "spread": float(ad_settings.SERVING_PRIOR_SPREAD),
        "headline": Creative.AssetType.HEADLINE.value,
        "rejected": Creative.Status.REJECTED.value,
        "human": Creative.Source.HUMAN.value,
        "now": now,
    }
    with connection.cursor() as cur:
        cur.execute(
            f"""
            WITH assets AS (
                SELECT id, campaign_id, language, served, LEAST(clicked, served) AS clicks, source = %(human)s AS human,
                       score, count(score) OVER w AS known, min(score) OVER w AS lo, max(score) OVER w AS hi,
                       bool_or(source = %(human)s) OVER w AS any_human, bool_or(source <> %(human)s) OVER w AS any_other
                FROM {creatives}
                WHERE campaign_id = ANY(%(ids)s) AND asset_type = %(headline)s AND status <> %(rejected)s
                WINDOW w AS (PARTITION BY campaign_id, language)
            ), ranked AS (
                SELECT *, LEAST(GREATEST(%(base)s * (1.0::float8 + %(spread)s * (2.0::float8 * (
                    CASE WHEN score IS NOT NULL AND known > 1 AND hi > lo THEN (score - lo) / (hi - lo)
                    ELSE 0.5::float8 END) - 1.0::float8)), 1e-4::float8), 0.5::float8) AS mean
                FROM assets
            ), priors AS (
                SELECT id, served, clicks, CASE WHEN any_human AND any_other AND NOT human
                    THEN LEAST(mean, max(mean) FILTER (WHERE human) OVER w) ELSE mean END AS mean
                FROM ranked WINDOW w AS (PARTITION BY campaign_id, language)
            )
            UPDATE {creatives} cr SET ctr_alpha = p.mean * %(strength)s + p.clicks,
                ctr_beta = (1.0::float8 - p.mean) * %(strength)s + p.served - p.clicks, updated_at = %(now)s
            FROM priors p WHERE cr.id = p.id
            """,
            params,
        )
        cur.execute(
            f"""
            UPDATE {campaigns} SET cvr_alpha = 1 + n.conversions, cvr_beta = 19 + GREATEST(clicked - n.conversions, 0),
                revenue_per_conversion = CASE WHEN n.conversions > 0
                    THEN attributed_revenue::float8 / n.conversions END,
                updated_at = %(now)s
            FROM (SELECT id AS campaign_id, LEAST(converted, GREATEST(clicked, converted)) AS conversions
                  FROM {campaigns} WHERE id = ANY(%(ids)s)) n
            WHERE id = n.campaign_id
            """,
            params,
        )


def label_assets(campaign_ids: list[int], *, rng: np.random.Generator, now: dt.datetime) -> dict[str, int]:
    """Posterior comparison of the campaigns' approved headlines, per language: LEARNING until
    STRATEGY_MIN_IMPRESSIONS; then BEST (most likely best), LOW (the leader is better with probability
    >= STRATEGY_LOW_CONFIDENCE), GOOD otherwise; paused when the leader is better with probability
    >= STRATEGY_PAUSE_CONFIDENCE and the asset has twice the minimum impressions (a campaign always
    keeps its leader). Monte Carlo draws only for groups with two mature assets or more; one bulk write."""
    minimum = int(ad_settings.STRATEGY_MIN_IMPRESSIONS)
    low_p = float(ad_settings.STRATEGY_LOW_CONFIDENCE)
    pause_p = float(ad_settings.STRATEGY_PAUSE_CONFIDENCE)
    creatives, campaigns = Creative._meta.db_table, Campaign._meta.db_table
    with connection.cursor() as cur:
        # the order of the draws: campaigns as Campaign's ordering (newest first), then the assets as Creative's
        cur.execute(
            f"""
            SELECT cr.id, cr.campaign_id, cr.language, cr.served, cr.ctr_alpha, cr.ctr_beta, cr.label
            FROM {creatives} cr JOIN {campaigns} c ON c.id = cr.campaign_id
            WHERE cr.campaign_id = ANY(%s) AND cr.asset_type = %s AND cr.status = %s AND cr.ctr_alpha IS NOT NULL
            ORDER BY c.created_at DESC, c.id, cr.language, cr.score DESC, cr.id
            """,
            [list(campaign_ids), Creative.AssetType.HEADLINE.value, Creative.Status.APPROVED.value],
        )
        rows = cur.fetchall()
    if not rows:
        return {}
    ids, camps, langs, served, alpha, beta, old = (np.array(col) for col in zip(*rows, strict=True))
    served = served.astype(np.int64)
    alpha, beta = alpha.astype(np.float64), beta.astype(np.float64)
    # group number of each row: a new group where the (campaign, language) changes
    starts = np.ones(len(ids), bool)
    starts[1:] = (camps[1:] != camps[:-1]) | (langs[1:] != langs[:-1])
    group = np.cumsum(starts) - 1
    mature = served >= minimum
    mature_per_group = np.bincount(group[mature], minlength=group[-1] + 1)
    labels = np.where(mature, Creative.Label.GOOD.value, Creative.Label.LEARNING.value).astype(object)
    labels[mature & (mature_per_group[group] == 1)] = Creative.Label.BEST.value
    pause = np.zeros(len(ids), bool)
    bounds = np.append(np.flatnonzero(starts), len(ids))
    for g in np.flatnonzero(mature_per_group > 1):
        lo, hi = bounds[g], bounds[g + 1]
        idx = lo + np.flatnonzero(mature[lo:hi])
        draws = rng.beta(alpha[idx], beta[idx], size=(4000, len(idx)))
        p_best = np.bincount(draws.argmax(axis=1), minlength=len(idx)) / len(draws)
        leader = int(np.argmax(p_best))
        p_leader_better = (draws[:, [leader]] > draws).mean(axis=0)
        p_leader_better[leader] = 0.0  # the leader is never LOW nor paused
        labels[idx] = np.where(p_leader_better >= low_p, Creative.Label.LOW.value, Creative.Label.GOOD.value)
        labels[idx[leader]] = Creative.Label.BEST.value
        pause[idx] = (p_leader_better >= pause_p) & (served[idx] >= 2 * minimum)
    relabel = labels != old
    write = relabel | pause
    changed: dict[str, int] = defaultdict(int)
    for label, n in zip(*np.unique(labels[relabel].astype(str), return_counts=True), strict=True):
        changed[f"label_{label}"] = int(n)
    if pause.any():
        changed["paused"] = int(pause.sum())
    if write.any():
        with connection.cursor() as cur:
            cur.execute(
                f"""
                UPDATE {creatives} cr SET label = v.label, updated_at = %s,
                    status = CASE WHEN v.pause THEN %s ELSE cr.status END
                FROM unnest(%s::bigint[], %s::varchar[], %s::boolean[]) AS v(id, label, pause)
                WHERE cr.id = v.id
                """,
                [
                    now,
                    Creative.Status.PAUSED.value,
                    [int(x) for x in ids[write]],
                    [str(x) for x in labels[write]],
                    [bool(x) for x in pause[write]],
                ],
            )
    return dict(changed)


@transaction.atomic
def update_strategy(*, now: dt.datetime | None = None, lag_seconds: float | None = None) -> dict:
    """Read the log since the watermark: roll up hourly statistics, update each asset's CTR posterior and
    label, each campaign's conversion posterior and revenue per conversion. Returns what it did.

    Set-based: the new rows are aggregated once into a temporary table by SQL, and every counter, posterior and
    label is written by a few bulk statements, so the time grows with the rows PostgreSQL reads, not with
    Python loops over campaigns and assets (bench/strategy_update.py: a 5-minute window of 1,000,000
    impressions over 10,000 campaigns)."""
    now = now or timezone.now()
    lag = float(ad_settings.STRATEGY_LAG_SECONDS if lag_seconds is None else lag_seconds)
    cutoff = now - dt.timedelta(seconds=lag)
    StrategyState.objects.get_or_create(key="default")
    state = StrategyState.objects.select_for_update().get(key="default")
    imp_lo, imp_hi = _new_range(Impression, state.impression_id, "served_at", cutoff)
    ev_lo, ev_hi = _new_range(AdEvent, state.event_id, "occurred_at", cutoff)
    conv_lo, conv_hi = _new_range(Conversion, state.conversion_id, "created_at", cutoff)
    if imp_hi is None and ev_hi is None and conv_hi is None:
        result = {"changed": False, "message": "no new impressions, events or conversions since the last update"}
        state.updated_at = now
        state.last_result = result
        state.save(update_fields=["updated_at", "last_result"])
        return result

    _collect_new_rows(
        imp=(imp_lo, imp_hi if imp_hi is not None else imp_lo),
        ev=(ev_lo, ev_hi if ev_hi is not None else ev_lo),
        conv=(conv_lo, conv_hi if conv_hi is not None else conv_lo),
    )
    counts, touched = _apply_new_rows(now)
    _update_posteriors(touched, now)
    rng = np.random.default_rng(int(now.timestamp()))
    labels = label_assets(touched, rng=rng, now=now)
    delivery = shift_delivery(now)
    with connection.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {NEW_ROWS}")
    state.impression_id = imp_hi if imp_hi is not None else state.impression_id
    state.event_id = ev_hi if ev_hi is not None else state.event_id
    state.conversion_id = conv_hi if conv_hi is not None else state.conversion_id
    result = {"changed": True, "campaigns": len(touched), **counts, **labels, **delivery}
    state.updated_at = now
    state.last_result = result
    state.save()
    log.info("strategy update: %s", result)
    return result


def shift_delivery(now: dt.datetime) -> dict[str, int]:
    """Pacing rates from today's spend against the day's plan; placement and audience weights from each
    placement's and audience's ('close': relevance >= 0.75, 'broad') return over the last 7 days relative to
    the campaign's (clipped to 0.5..1.5; at least STRATEGY_MIN_CLICKS clicks). Serving multiplies by all."""
    from adengine.models import CampaignDay

    today = dict(CampaignDay.objects.filter(day=clock.today(now)).values_list("campaign_id", "spent"))
    min_clicks = int(ad_settings.STRATEGY_MIN_CLICKS)
    week = HourlyStats.objects.filter(hour__gte=now - dt.timedelta(days=7))
    per_placement: dict[int, dict[str, tuple]] = defaultdict(dict)
    for r in week.values("campaign_id", "placement__key").annotate(
        c=Sum("clicks"), s=Sum("spend"), rv=Sum("revenue"), i=Sum("impressions")
    ):
        per_placement[r["campaign_id"]][r["placement__key"]] = (r["c"] or 0, float(r["s"] or 0), float(r["rv"] or 0))
    per_audience = _audience_returns(now - dt.timedelta(days=7))
    paced = shifted = 0
    updates: list[tuple[int, float, str, str]] = []
    for pk, daily_budget, pacing_rate, placement_weights, audience_weights in Campaign.objects.filter(
        status=Campaign.Status.ACTIVE, tier=Campaign.Tier.SPONSORED
    ).values_list("pk", "daily_budget", "pacing_rate", "placement_weights", "audience_weights"):
        rate = 1.0
        if daily_budget:
            plan = float(daily_plan(float(daily_budget), now))
            spent = float(today.get(pk, 0))
            if spent > plan > 0:
                rate = max(0.2, plan / spent)
        weights = _relative_weights(per_placement.get(pk, {}), min_clicks)
        audiences = _relative_weights(per_audience.get(pk, {}), min_clicks)
        if abs(rate - pacing_rate) > 1e-3 or weights != placement_weights or audiences != audience_weights:
            updates.append((pk, rate, json.dumps(weights), json.dumps(audiences)))
            paced += rate < 1.0
            shifted += bool(weights) or bool(audiences)
    if updates:  # one statement for every changed campaign
        ids, rates, weights, audiences = (list(col) for col in zip(*updates, strict=True))
        with connection.cursor() as cur:
            cur.execute(
                f"""
                UPDATE {Campaign._meta.db_table} c SET pacing_rate = v.rate, placement_weights = v.weights::jsonb,
                    audience_weights = v.audiences::jsonb, updated_at = %s
                FROM unnest(%s::bigint[], %s::float8[], %s::text[], %s::text[]) AS v(id, rate, weights, audiences)
                WHERE c.id = v.id
                """,
                [now, ids, rates, weights, audiences],
            )
    return {"paced": paced, "placement_shifts": shifted}


def _audience_returns(since: dt.datetime) -> dict[int, dict[str, tuple]]:
    """Per campaign and audience ('close' / 'broad'): clicks, spend and revenue since ``since``."""
    close = Q(impression__relevance__gte=CLOSE_RELEVANCE)
    out: dict[int, dict[str, tuple]] = defaultdict(dict)
    # joined to their impressions on the partition key too: one day's partition probed per event, not every day's
    events = AdEvent.objects.filter(
        occurred_at__gte=since,
        impression__served_at=F("impression_served_at"),
        impression__campaign__tier=Campaign.Tier.SPONSORED,
    )
    conversions = Conversion.objects.filter(ordered_at__gte=since, reversed_at__isnull=True)
    for name, cond in (("close", close), ("broad", ~close)):
        money = dict(
            conversions.filter(cond)
            .values_list("campaign_id")
            .annotate(r=Sum("revenue"))
            .values_list("campaign_id", "r")
        )
        for r in (
            events.filter(cond)
            .values("campaign_id")
            .annotate(c=Count("id", filter=Q(kind=AdEvent.Kind.CLICK, status__in=AdEvent.COUNTED)), s=Sum("charge"))
        ):
            out[r["campaign_id"]][name] = (r["c"], float(r["s"] or 0), float(money.get(r["campaign_id"]) or 0))
    return out


def _relative_weights(stats: dict[str, tuple], min_clicks: int) -> dict[str, float]:
    """Each segment's return relative to the whole (revenue per spend, else clicks per spend), 0.5..1.5."""
    total_clicks = sum(v[0] for v in stats.values())
    total_spend = sum(v[1] for v in stats.values())
    total_revenue = sum(v[2] for v in stats.values())
    weights = {}
    for key, (clicks, spend, revenue) in stats.items():
        if clicks < min_clicks or spend <= 0 or total_spend <= 0:
            continue
        if total_revenue > 0:
            ratio = (revenue / spend) / (total_revenue / total_spend)
        else:
            ratio = (clicks / spend) / (total_clicks / total_spend)
        weights[key] = round(min(1.5, max(0.5, ratio)), 3)
    return weights
