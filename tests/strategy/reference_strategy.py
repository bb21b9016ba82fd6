"""The periodic strategy update: from what happened since the last run, learn and roll up statistics.

Incremental from a watermark (the last impression, event and conversion ids read), in one transaction
with it, so running it twice changes nothing the second time. Rows newer than ``STRATEGY_LAG_SECONDS``
are left for the next run: ids are assigned at insert, and a transaction that commits late must not
be skipped.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from decimal import Decimal

import numpy as np
from django.db import connection, transaction
from django.db.models import Count, F, Max, Q, Sum
from django.db.models.expressions import RawSQL
from django.db.models.functions import TruncHour
from django.utils import timezone

from adengine import clock
from adengine.conf import settings as ad_settings
from adengine.models import AdEvent, Campaign, Conversion, Creative, HourlyStats, Impression, StrategyState
from adengine.selectors.performance import arm_sql
from adengine.services.budgets import daily_plan
from adengine.serving.context import CLOSE_RELEVANCE
from adengine.serving.learning import posteriors
from adengine.serving.policy import prior_from_scores

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


def add_to_rollup(rows: dict[tuple, dict]) -> None:
    """Add counts to the hourly rows, keyed (hour, campaign, creative, placement, arm), created when missing, in
    one statement per batch; a row's missing counters add nothing (a correction may be negative)."""
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


def _empty() -> dict:
    return {"impressions": 0, "views": 0, "clicks": 0, "conversions": 0, "spend": Decimal(0), "revenue": Decimal(0)}


def label_assets(campaign_id: int, *, rng: np.random.Generator) -> dict[str, int]:
    """Posterior comparison of a campaign's approved headlines, per language: LEARNING until
    STRATEGY_MIN_IMPRESSIONS; then BEST (most likely best), LOW (the leader is better with probability
    >= STRATEGY_LOW_CONFIDENCE), GOOD otherwise; paused when the leader is better with probability
    >= STRATEGY_PAUSE_CONFIDENCE and the asset has twice the minimum impressions (a campaign always
    keeps its leader)."""
    minimum = int(ad_settings.STRATEGY_MIN_IMPRESSIONS)
    low_p = float(ad_settings.STRATEGY_LOW_CONFIDENCE)
    pause_p = float(ad_settings.STRATEGY_PAUSE_CONFIDENCE)
    changed = defaultdict(int)
    assets = list(
        Creative.objects.filter(
            campaign_id=campaign_id, asset_type=Creative.AssetType.HEADLINE, status=Creative.Status.APPROVED
        ).exclude(ctr_alpha=None)
    )
    by_language: dict[str, list[Creative]] = defaultdict(list)
    for a in assets:
        by_language[a.language].append(a)
    now = timezone.now()
    for group in by_language.values():
        mature = [a for a in group if a.served >= minimum]
        labels: dict[int, str] = {a.pk: Creative.Label.LEARNING for a in group if a.served < minimum}
        pause: set[int] = set()
        if len(mature) == 1:
            labels[mature[0].pk] = Creative.Label.BEST
        elif mature:
            draws = rng.beta([a.ctr_alpha for a in mature], [a.ctr_beta for a in mature], size=(4000, len(mature)))
            p_best = np.bincount(draws.argmax(axis=1), minlength=len(mature)) / len(draws)
            leader = int(np.argmax(p_best))
            for i, a in enumerate(mature):
                if i == leader:
                    labels[a.pk] = Creative.Label.BEST
                    continue
                p_leader_better = float((draws[:, leader] > draws[:, i]).mean())
                labels[a.pk] = Creative.Label.LOW if p_leader_better >= low_p else Creative.Label.GOOD
                if p_leader_better >= pause_p and a.served >= 2 * minimum:
                    pause.add(a.pk)
        for a in group:
            new_label = labels[a.pk]
            fields = {}
            if a.label != new_label:
                fields["label"] = new_label
                changed[f"label_{new_label}"] += 1
            if a.pk in pause:
                fields["status"] = Creative.Status.PAUSED
                changed["paused"] += 1
            if fields:
                Creative.objects.filter(pk=a.pk).update(updated_at=now, **fields)
    return dict(changed)


@transaction.atomic
def update_strategy(*, now: dt.datetime | None = None, lag_seconds: float | None = None) -> dict:
    """Read the log since the watermark: roll up hourly statistics, update each asset's CTR posterior and
    label, each campaign's conversion posterior and revenue per conversion. Returns what it did."""
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

    hourly: dict[tuple, dict] = defaultdict(_empty)
    served: dict[int, int] = defaultdict(int)
    clicked: dict[int, int] = defaultdict(int)
    camp_clicks: dict[int, int] = defaultdict(int)
    camp_conv: dict[int, int] = defaultdict(int)
    camp_revenue: dict[int, Decimal] = defaultdict(Decimal)
    counts = {"impressions": 0, "views": 0, "clicks": 0, "conversions": 0}
    if imp_hi is not None:
        for r in (
            Impression.objects.filter(pk__gt=imp_lo, pk__lte=imp_hi)
            .annotate(h=TruncHour("served_at"), arm=ARM)
            .values("h", "campaign_id", "creative_id", "placement_id", "arm")
            .annotate(n=Count("id"))
        ):
            hourly[(r["h"], r["campaign_id"], r["creative_id"], r["placement_id"], r["arm"])]["impressions"] += r["n"]
            if r["creative_id"]:
                served[r["creative_id"]] += r["n"]
            counts["impressions"] += r["n"]
    if ev_hi is not None:
        for r in (
            AdEvent.objects.filter(pk__gt=ev_lo, pk__lte=ev_hi)
            .annotate(h=TruncHour("occurred_at"), arm=ARM)
            .values("h", "campaign_id", "impression__creative_id", "impression__placement_id", "arm")
            .annotate(
                views=Count("id", filter=Q(kind=AdEvent.Kind.VIEW, status__in=AdEvent.COUNTED)),
                clicks=Count("id", filter=Q(kind=AdEvent.Kind.CLICK, status__in=AdEvent.COUNTED)),
                spend=Sum("charge"),
            )
        ):
            key = (r["h"], r["campaign_id"], r["impression__creative_id"], r["impression__placement_id"], r["arm"])
            hourly[key]["views"] += r["views"]
            hourly[key]["clicks"] += r["clicks"]
            hourly[key]["spend"] += r["spend"] or Decimal(0)
            if r["impression__creative_id"]:
                clicked[r["impression__creative_id"]] += r["clicks"]
            camp_clicks[r["campaign_id"]] += r["clicks"]
            counts["views"] += r["views"]
            counts["clicks"] += r["clicks"]
    if conv_hi is not None:
        new = Conversion.objects.filter(pk__gt=conv_lo, pk__lte=conv_hi, reversed_at__isnull=True)
        for r in conversion_keys(new).annotate(n=Count("id"), revenue=Sum("revenue")):
            key = tuple(r[name] for name in CONVERSION_KEY)
            hourly[key]["conversions"] += r["n"]
            hourly[key]["revenue"] += r["revenue"] or Decimal(0)
            camp_conv[r["campaign_id"]] += r["n"]
            camp_revenue[r["campaign_id"]] += r["revenue"] or Decimal(0)
            counts["conversions"] += r["n"]
    add_to_rollup(hourly)

    for cid in set(served) | set(clicked):
        Creative.objects.filter(pk=cid).update(
            served=F("served") + served.get(cid, 0), clicked=F("clicked") + clicked.get(cid, 0)
        )
    touched = set(camp_clicks) | set(camp_conv) | {key[1] for key in hourly}
    for cid in touched:
        Campaign.objects.filter(pk=cid).update(
            clicked=F("clicked") + camp_clicks.get(cid, 0),
            converted=F("converted") + camp_conv.get(cid, 0),
            attributed_revenue=F("attributed_revenue") + camp_revenue.get(cid, Decimal(0)),
        )
    rng = np.random.default_rng(int(now.timestamp()))
    labels: dict[str, int] = defaultdict(int)
    for campaign in Campaign.objects.filter(pk__in=touched):
        _update_posteriors(campaign, now)
        for key, n in label_assets(campaign.pk, rng=rng).items():
            labels[key] += n
    delivery = shift_delivery(now)
    state.impression_id = imp_hi if imp_hi is not None else state.impression_id
    state.event_id = ev_hi if ev_hi is not None else state.event_id
    state.conversion_id = conv_hi if conv_hi is not None else state.conversion_id
    result = {"changed": True, "campaigns": len(touched), **counts, **labels, **delivery}
    state.updated_at = now
    state.last_result = result
    state.save()
    log.info("strategy update: %s", result)
    return result


def _update_posteriors(campaign: Campaign, now: dt.datetime) -> None:
    """Each approved headline's CTR posterior (prior from its audience-fit score within the campaign and
    language, plus its impressions and clicks) and the campaign's conversion posterior."""
    base = float(ad_settings.SERVING_BASE_CTR)
    strength = float(ad_settings.SERVING_PRIOR_STRENGTH)
    spread = float(ad_settings.SERVING_PRIOR_SPREAD)
    by_language: dict[str, list[Creative]] = defaultdict(list)
    for a in Creative.objects.filter(campaign=campaign, asset_type=Creative.AssetType.HEADLINE).exclude(
        status=Creative.Status.REJECTED
    ):
        by_language[a.language].append(a)
    for group in by_language.values():
        scores = np.array([np.nan if a.score is None else a.score for a in group])
        human = np.array([a.source == Creative.Source.HUMAN for a in group])
        a0, b0 = prior_from_scores(scores, base_ctr=base, strength=strength, spread=spread, human=human)
        alpha, beta = posteriors(a0, b0, [a.served for a in group], [min(a.clicked, a.served) for a in group])
        for a, al, be in zip(group, alpha, beta, strict=True):
            Creative.objects.filter(pk=a.pk).update(ctr_alpha=float(al), ctr_beta=float(be), updated_at=now)
    campaign.refresh_from_db(fields=["clicked", "converted", "attributed_revenue"])
    conversions = min(campaign.converted, max(campaign.clicked, campaign.converted))
    Campaign.objects.filter(pk=campaign.pk).update(
        cvr_alpha=1.0 + conversions,
        cvr_beta=19.0 + max(campaign.clicked - conversions, 0),
        revenue_per_conversion=(float(campaign.attributed_revenue) / conversions) if conversions else None,
        updated_at=now,
    )


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
    for c in Campaign.objects.filter(status=Campaign.Status.ACTIVE, tier=Campaign.Tier.SPONSORED):
        rate = 1.0
        if c.daily_budget:
            plan = float(daily_plan(float(c.daily_budget), now))
            spent = float(today.get(c.pk, 0))
            if spent > plan > 0:
                rate = max(0.2, plan / spent)
        weights = _relative_weights(per_placement.get(c.pk, {}), min_clicks)
        audiences = _relative_weights(per_audience.get(c.pk, {}), min_clicks)
        if abs(rate - c.pacing_rate) > 1e-3 or weights != c.placement_weights or audiences != c.audience_weights:
            Campaign.objects.filter(pk=c.pk).update(
                pacing_rate=rate, placement_weights=weights, audience_weights=audiences, updated_at=now
            )
            paced += rate < 1.0
            shifted += bool(weights) or bool(audiences)
    return {"paced": paced, "placement_shifts": shifted}


def _audience_returns(since: dt.datetime) -> dict[int, dict[str, tuple]]:
    """Per campaign and audience ('close' / 'broad'): clicks, spend and revenue since ``since``."""
    close = Q(impression__relevance__gte=CLOSE_RELEVANCE)
    out: dict[int, dict[str, tuple]] = defaultdict(dict)
    events = AdEvent.objects.filter(occurred_at__gte=since, impression__campaign__tier=Campaign.Tier.SPONSORED)
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
