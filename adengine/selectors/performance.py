"""One source of campaign figures: the strategy update's hourly roll-up plus the live tail of the log since its
watermark, read in one statement (one snapshot, so a roll-up committing meanwhile is never counted twice).

Every view of performance -- the API's stats, the admin's campaign list and report, the experiments and the
simulation -- reads these, so they agree: an impression is a served ad, a view and a click are *counted* events
(bots, replays and floods excluded), spend is what was charged, a conversion is an order credited to a click and
its revenue what the order brought. A row belongs to the hour it happened in (served, occurred, ordered); windows
are hour-aligned and days are the shop's (``adengine.clock``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields
from decimal import Decimal

from django.utils import timezone

from adengine import clock
from adengine.models import AdEvent, Conversion, DailyStats, HourlyStats, Impression, StrategyState
from adengine.routers import read_connection

DIMENSIONS = ("campaign", "day", "placement", "creative", "arm")
COUNTED = tuple(AdEvent.COUNTED)


@dataclass
class Figures:
    """Counts and money of anything (a campaign, a day, a placement ...), with the rates that follow from them."""

    impressions: int = 0
    views: int = 0
    clicks: int = 0
    conversions: int = 0
    spend: Decimal = Decimal(0)
    revenue: Decimal = Decimal(0)

    @property
    def ctr(self) -> float | None:
        return self.clicks / self.impressions if self.impressions else None

    @property
    def conversion_rate(self) -> float | None:
        return self.conversions / self.clicks if self.clicks else None

    @property
    def roas(self) -> float | None:
        return float(self.revenue / self.spend) if self.spend else None

    @property
    def ecpm(self) -> float | None:
        return 1000.0 * float(self.spend) / self.impressions if self.impressions else None

    def as_dict(self) -> dict:
        """JSON-ready: counts, money rounded to the cent (spend to 1/10000), rates to 6 places."""

        def rate(x: float | None) -> float | None:
            return None if x is None else round(x, 6)

        return {
            **{f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("spend", "revenue")},
            "spend": round(float(self.spend), 4),
            "revenue": round(float(self.revenue), 2),
            "ctr": rate(self.ctr),
            "conversion_rate": rate(self.conversion_rate),
            "roas": rate(self.roas),
        }


def arm_sql(impression: str) -> str:
    """SQL for an impression's experiment arm, '<experiment id>:<arm>' or '' (``impression``: its table alias)."""
    i = impression
    return (
        f"CASE WHEN {i}.context ? 'experiment' "
        f"THEN ({i}.context->>'experiment') || ':' || COALESCE({i}.context->>'arm', '') ELSE '' END"
    )


def _hour(column: str) -> str:
    """The start of the shop-time hour of ``column``, as the roll-up buckets it (TruncHour)."""
    return f"(date_trunc('hour', {column} AT TIME ZONE %(tz)s) AT TIME ZONE %(tz)s)"


def _rolled_up(daily: bool) -> str:
    """The rolled-up rows in the window, each with its hour and keys: the hourly roll-up's, or the daily one's
    (filed at the start of their day, without headline or arm: read only for windows of whole days)."""
    window = "{h} >= %(since)s AND {h} < %(until)s"
    if not daily:
        return f"""
        SELECT hour, campaign_id, placement_id, creative_id, arm, impressions, views, clicks, conversions, spend,
               revenue
        FROM {HourlyStats._meta.db_table} WHERE {{campaigns}} AND {window.format(h="hour")}"""
    return f"""
        SELECT (day::timestamp AT TIME ZONE %(tz)s) AS hour, campaign_id, placement_id, NULL::bigint AS creative_id,
               '' AS arm, impressions, views, clicks, conversions, spend, revenue
        FROM {DailyStats._meta.db_table} WHERE {{campaigns}} AND day >= %(day_from)s AND day < %(day_to)s"""


def _sources(daily: bool = False) -> str:
    """The union of rolled-up rows and the log rows after the roll-up's watermark, each with its hour and keys."""
    imp, ev, conv = (m._meta.db_table for m in (Impression, AdEvent, Conversion))
    state = StrategyState._meta.db_table
    window = "{h} >= %(since)s AND {h} < %(until)s"
    arm = arm_sql("i")
    return f"""
        WITH mark AS (
            SELECT COALESCE(max(impression_id), 0) AS i, COALESCE(max(event_id), 0) AS e,
                   COALESCE(max(conversion_id), 0) AS c
            FROM {state} WHERE key = 'default'
        )
        {_rolled_up(daily)}
        UNION ALL
        SELECT {_hour("i.served_at")}, i.campaign_id, i.placement_id, i.creative_id, {arm}, 1, 0, 0, 0, 0, 0
        FROM {imp} i WHERE i.id > (SELECT i FROM mark) AND {{campaigns_i}}
              AND {window.format(h=_hour("i.served_at"))}
        UNION ALL
        SELECT {_hour("e.occurred_at")}, e.campaign_id, i.placement_id, i.creative_id, {arm}, 0,
               (e.kind = 'view' AND e.status = ANY(%(counted)s))::int,
               (e.kind = 'click' AND e.status = ANY(%(counted)s))::int, 0, e.charge, 0
        FROM {ev} e JOIN {imp} i ON i.id = e.impression_id AND i.served_at = e.impression_served_at
        WHERE e.id > (SELECT e FROM mark) AND {{campaigns_e}}
              AND {window.format(h=_hour("e.occurred_at"))}
        UNION ALL
        SELECT {_hour("c.ordered_at")}, c.campaign_id, i.placement_id, i.creative_id, {arm}, 0, 0, 0, 1, 0, c.revenue
        FROM {conv} c JOIN {imp} i ON i.id = c.impression_id
        WHERE c.id > (SELECT c FROM mark) AND c.reversed_at IS NULL AND {{campaigns_c}}
              AND {window.format(h=_hour("c.ordered_at"))}
    """


_KEYS = {
    "campaign": "campaign_id",
    "day": "(hour AT TIME ZONE %(tz)s)::date",
    "placement": "placement_id",
    "creative": "creative_id",
    "arm": "arm",
}
FAR_PAST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
FAR_FUTURE = dt.datetime(9999, 1, 1, tzinfo=dt.UTC)
DAILY_DIMENSIONS = {"campaign", "day", "placement"}


def _day_bound(moment: dt.datetime | None, default: dt.date) -> dt.date | None:
    """The shop's date that ``moment`` starts (``default`` for None); None when it is not a shop midnight."""
    if moment is None:
        return default
    local = timezone.localtime(moment)
    return local.date() if local == clock.midnight(local) else None


def _daily_window(by: tuple[str, ...], since, until) -> tuple[dt.date, dt.date] | None:
    """The days from and before which the daily roll-up answers this grouping and window, or None when only the
    hourly one can: a headline or arm, a window not of whole shop days, or a time zone other than the shop's
    (the daily rows are the shop's days: ``services.strategy``)."""
    if not set(by) <= DAILY_DIMENSIONS:
        return None
    if timezone.get_current_timezone_name() != timezone.get_default_timezone_name():
        return None
    day_from, day_to = _day_bound(since, dt.date(1, 1, 1)), _day_bound(until, dt.date(9999, 1, 1))
    if day_from is None or day_to is None:
        return None
    return day_from, day_to


def figures(
    campaign_ids,
    *,
    by: tuple[str, ...] = ("campaign",),
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    daily: bool = True,
) -> dict[tuple, Figures]:
    """Figures of the campaigns (None: every campaign) grouped by ``by`` (some of ``DIMENSIONS``; ``()`` for one
    total), in the hours from ``since`` to ``until``. Keys are tuples in the order of ``by``: "day" a date,
    "placement" and "creative" ids (None when the ad had none), "arm" ``"<experiment id>:<arm>"`` ('' outside
    experiments). Groups with nothing in them are left out. One query, whatever the number of campaigns.

    Grouped by campaign, day or placement over whole shop days (``since`` and ``until`` midnights or None), the
    rolled-up part is read from the daily roll-up (the same sums, a few hundred rows per campaign instead of
    thousands); ``daily=False`` reads the hourly one always."""
    unknown = set(by) - set(DIMENSIONS)
    if unknown:
        raise ValueError(f"by: unknown dimension(s) {', '.join(sorted(unknown))}; use {', '.join(DIMENSIONS)}")
    ids = None if campaign_ids is None else [int(i) for i in campaign_ids]
    if ids == []:
        return {}
    keys = [_KEYS[d] for d in by]
    sums = "sum(impressions), sum(views), sum(clicks), sum(conversions), sum(spend), sum(revenue)"
    where = {
        name: "TRUE" if ids is None else f"{alias}campaign_id = ANY(%(ids)s)"
        for name, alias in (("campaigns", ""), ("campaigns_i", "i."), ("campaigns_e", "e."), ("campaigns_c", "c."))
    }
    days = _daily_window(by, since, until) if daily else None
    sources = _sources(daily=days is not None).format(**where)
    sql = f"SELECT {''.join(k + ', ' for k in keys)}{sums} FROM ({sources}) AS rows"
    if keys:
        sql += f" GROUP BY {', '.join(str(n + 1) for n in range(len(keys)))}"
    params = {
        "ids": ids,
        "since": since or FAR_PAST,
        "until": until or FAR_FUTURE,
        "tz": timezone.get_current_timezone_name(),
        "counted": list(COUNTED),
        "day_from": days[0] if days else None,
        "day_to": days[1] if days else None,
    }
    out: dict[tuple, Figures] = {}
    with read_connection().cursor() as cur:  # REPORTS_DATABASE inside a report
        cur.execute(sql, params)
        for row in cur.fetchall():
            key, (i, v, c, cv, s, r) = tuple(row[: len(keys)]), row[len(keys) :]
            if i is None:  # no rows at all (only without grouping)
                continue
            out[key] = Figures(int(i), int(v), int(c), int(cv), Decimal(s or 0), Decimal(r or 0))
    return out


def totals(campaign_ids, *, since: dt.datetime | None = None, until: dt.datetime | None = None) -> dict[int, Figures]:
    """Each campaign's figures (a campaign with none gets zeros): the admin list's column in one query."""
    found = figures(campaign_ids, by=("campaign",), since=since, until=until)
    return {int(cid): found.get((int(cid),), Figures()) for cid in campaign_ids}
