"""Campaign performance: impressions, clicks, conversions, spend and revenue, counted honestly."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate

from adengine.models import AdEvent, Conversion, Impression


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 6) if b else None


def _finish(row: dict) -> dict:
    impressions, clicks = row["impressions"], row["clicks"]
    spend, revenue = float(row["spend"]), float(row["revenue"])
    return {
        **row,
        "spend": round(spend, 4),
        "revenue": round(revenue, 2),
        "ctr": _ratio(clicks, impressions),
        "conversion_rate": _ratio(row["conversions"], clicks),
        "roas": _ratio(revenue, spend),
    }


def campaign_stats(
    campaign_ids: list[int], *, since: dt.datetime | None = None, until: dt.datetime | None = None, by_day: bool = False
) -> dict:
    """Per campaign (and per day with ``by_day``): impressions served, views, counted clicks (bots, replays
    and floods excluded), conversions, spend, revenue, CTR, conversion rate and ROAS."""
    window_i, window_e, window_c = Q(), Q(), Q()
    if since:
        window_i &= Q(served_at__gte=since)
        window_e &= Q(occurred_at__gte=since)
        window_c &= Q(ordered_at__gte=since)
    if until:
        window_i &= Q(served_at__lt=until)
        window_e &= Q(occurred_at__lt=until)
        window_c &= Q(ordered_at__lt=until)
    empty = {"impressions": 0, "views": 0, "clicks": 0, "conversions": 0, "spend": Decimal(0), "revenue": Decimal(0)}
    rows: dict = defaultdict(lambda: dict(empty))

    def key(cid, day=None):
        return (cid, day) if by_day else cid

    imps = Impression.objects.filter(window_i, campaign_id__in=campaign_ids)
    group = ["campaign_id", "day"] if by_day else ["campaign_id"]
    if by_day:
        imps = imps.annotate(day=TruncDate("served_at"))
    for r in imps.values(*group).annotate(n=Count("id"), viewed=Count("id", filter=Q(viewed_at__isnull=False))):
        rows[key(r["campaign_id"], r.get("day"))].update(impressions=r["n"], views=r["viewed"])
    events = AdEvent.objects.filter(window_e, campaign_id__in=campaign_ids)
    if by_day:
        events = events.annotate(day=TruncDate("occurred_at"))
    for r in events.values(*group).annotate(
        clicks=Count("id", filter=Q(kind=AdEvent.Kind.CLICK, status__in=AdEvent.COUNTED)), spend=Sum("charge")
    ):
        rows[key(r["campaign_id"], r.get("day"))].update(clicks=r["clicks"], spend=r["spend"] or Decimal(0))
    convs = Conversion.objects.filter(window_c, campaign_id__in=campaign_ids)
    if by_day:
        convs = convs.annotate(day=TruncDate("ordered_at"))
    for r in convs.values(*group).annotate(n=Count("id"), revenue=Sum("revenue")):
        rows[key(r["campaign_id"], r.get("day"))].update(conversions=r["n"], revenue=r["revenue"] or Decimal(0))
    if not by_day:
        return {cid: _finish(rows[cid]) for cid in campaign_ids}
    out: dict = defaultdict(list)
    for (cid, day), row in sorted(rows.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        out[cid].append({"day": day.isoformat(), **_finish(row)})
    return dict(out)
