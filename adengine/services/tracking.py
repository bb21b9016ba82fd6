"""Views and clicks from signed URLs: counted once per nonce, bots and floods logged but not billed."""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import re
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from adengine.conf import settings as ad_settings
from adengine.models import AdEvent, Campaign, Impression, RateCounter, Shopper
from adengine.serving import tokens

from .budgets import charge

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrackResult:
    impression: Impression
    event: AdEvent

    @property
    def counted(self) -> bool:
        return self.event.status in AdEvent.COUNTED


def truncate_ip(ip: str | None) -> str | None:
    """The client's network, never the address: IPv4 /24, IPv6 /48."""
    if not ip:
        return None
    try:
        addr = ipaddress.ip_address(ip.strip())
    except ValueError:
        return None
    prefix = 24 if addr.version == 4 else 48
    return str(ipaddress.ip_network(f"{addr}/{prefix}", strict=False).network_address)


@lru_cache(maxsize=8)
def _bot_pattern(pattern: str) -> re.Pattern:
    return re.compile(pattern, re.IGNORECASE)


# HTTP clients that mobile apps use: a bot when they fetch a storefront ad, a person behind an app when the
# ad came from the decision API (the app asked for it)
APP_CLIENTS = re.compile(r"okhttp|cfnetwork|dart[/ ]|dart:io|alamofire|ktor-client|dalvik", re.IGNORECASE)
_detectors = threading.local()


def _crawler(user_agent: str) -> bool:
    from crawlerdetect import CrawlerDetect

    detector = getattr(_detectors, "value", None)
    if detector is None:
        detector = _detectors.value = CrawlerDetect()
    return bool(detector.isCrawler(user_agent))


def is_bot(user_agent: str, *, app: bool = False) -> bool:
    """A bot, a crawler or a load tool, or no user agent at all; ``app``: the ad was served to an app via the API.

    adengine's own list (``BOT_USER_AGENTS``: headless browsers, load tools, scripting clients) first, then the
    maintained crawler list of ``crawlerdetect``; an app's HTTP client (OkHttp, CFNetwork, Dart) counts as a
    person when the ad was served to an app.
    """
    user_agent = (user_agent or "").strip()
    if not user_agent or _bot_pattern(ad_settings.BOT_USER_AGENTS).search(user_agent):
        return True
    if app and APP_CLIENTS.search(user_agent):
        return False
    return _crawler(user_agent)


def _rate_limited(kind: str, ip: str | None, now: dt.datetime) -> bool:
    """Whether this event is over its network's per-minute limit; counts it (one atomic upsert per event).

    A sliding minute estimated from two fixed ones (the previous minute's count weighted by how much of it
    still falls in the last 60 seconds, as Cloudflare's limiter does): concurrent events from one network
    each get their own count, so at most ``limit`` of them pass in any minute, whatever the concurrency.
    Every non-bot event counts towards the limit, replays and refused ones included: a flood stays refused
    while it lasts.
    """
    limit = int(ad_settings.TRACKING_RATE_LIMITS.get(kind, 0) or 0)
    if not ip or limit <= 0:
        return False
    minute = now.replace(second=0, microsecond=0)
    key = f"{kind}:{ip}"
    table = RateCounter._meta.db_table
    with connection.cursor() as cur:
        cur.execute(
            f"WITH up AS (INSERT INTO {table} (key, minute, count) VALUES (%s, %s, 1) "
            f"ON CONFLICT (key, minute) DO UPDATE SET count = {table}.count + 1 RETURNING count) "
            f"SELECT (SELECT count FROM up), COALESCE((SELECT count FROM {table} WHERE key = %s AND minute = %s), 0)",
            [key, minute, key, minute - dt.timedelta(minutes=1)],
        )
        current, previous = cur.fetchone()
    elapsed = (now - minute).total_seconds() / 60
    return previous * (1 - elapsed) + current > limit


def purge_rate_counters(*, now: dt.datetime | None = None) -> int:
    """Drop counters of minutes that no longer matter (the strategy job runs it); returns rows deleted."""
    now = now or timezone.now()
    deleted, _ = RateCounter.objects.filter(minute__lt=now - dt.timedelta(minutes=2)).delete()
    return deleted


def _price(impression: Impression, kind: str) -> Decimal:
    campaign = impression.campaign
    if campaign.tier == Campaign.Tier.HOUSE:
        return Decimal(0)
    if kind == AdEvent.Kind.CLICK and campaign.pricing == Campaign.Pricing.CPC:
        return campaign.bid
    if kind == AdEvent.Kind.VIEW and campaign.pricing == Campaign.Pricing.CPM:
        return campaign.bid / Decimal(1000)
    return Decimal(0)


def find_impression(
    nonce, *, related: tuple[str, ...] = (), token: tokens.TokenData | None = None, restore: bool = True
) -> Impression:
    """The impression with this nonce; TokenError 404 if none.

    With the asynchronous impression log an impression may not be written yet when its beacon arrives:
    this process's pending impressions are flushed, then the lookup is retried briefly (the writer of
    another process flushes within SERVING_LOG_FLUSH_SECONDS). If it is still missing -- its writer is
    waiting for the database, or its process died -- the row is restored from the signed fields of the
    ``token`` (propensity unknown: NaN, ``context["restored"]``) unless ``restore`` is False; the writer
    completes it if its row comes. A token that carries its impression's time is looked up in that day's
    partition of the log only.
    """
    from adengine.serving.log import impression_log

    qs = Impression.objects.select_related(*related).filter(nonce=nonce)
    if token is not None and token.served_at is not None:
        qs = qs.filter(served_at=token.served_at)  # its day's partition only
    impression = qs.first()
    if impression is None and ad_settings.SERVING_LOG_MODE != "sync":
        impression_log.flush()
        for wait in (0.0, 0.05, 0.1, 0.2):
            time.sleep(wait)
            impression = qs.first()
            if impression is not None:
                break
    if impression is None and restore and token is not None and token.row is not None and restore_impression(token):
        impression = qs.first()
    if impression is None:
        raise tokens.TokenError(gettext_noop("no such ad"), 404)
    return impression


def restore_impression(token: tokens.TokenData) -> bool:
    """Write the impression a valid token names from the token's own signed fields; False if they name rows
    that no longer exist. Its landing URL is looked up as the decision did (asset, product, campaign, "/")."""
    from adengine.adapters import get_adapter
    from adengine.conf import get_product_model
    from adengine.models import Creative
    from adengine.serving.rows import ImpressionRow, insert_sql

    signed = dict(token.row or {})
    served_at = token.served_at or token.issued_at or timezone.now()
    signed.pop("served_at", None)
    campaign = Campaign.objects.filter(pk=signed["campaign_id"]).only("landing_url").first()
    if campaign is None:
        return False
    landing = Creative.objects.filter(pk=signed["creative_id"]).values_list("landing_url", flat=True).first() or ""
    if not landing and signed["product_id"] is not None:
        product = get_product_model()._default_manager.filter(pk=signed["product_id"]).first()
        landing = get_adapter().product_url(product) if product is not None else ""
    row = ImpressionRow(
        **signed,
        nonce=token.nonce,
        decision_id=token.nonce,  # the decision's id is not in the token; the nonce stands for it
        propensity=float("nan"),  # unknown: off-policy evaluation leaves these rows out
        predicted_ctr=0.0,
        relevance=0.0,
        value=0.0,
        candidates=0,
        personalised=False,
        policy="restored",
        context={"restored": True},
        landing_url=(landing or campaign.landing_url or "/")[:500],
        served_at=served_at,  # the real row's, so that it completes this one (ON CONFLICT (nonce, served_at))
    )
    try:
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute(insert_sql(1, complete_restored=False), row.values())
    except IntegrityError:  # its placement, campaign, asset, product or shopper is gone
        log.warning("impression %s not restored from its token: %s rows are gone", token.nonce, signed)
        return False
    log.warning("impression %s was not written yet: restored from its signed token", token.nonce)
    return True


def impression_for(kind: str, token: str, *, related: tuple[str, ...] = ()) -> Impression:
    """The impression a token names, if valid for ``kind``; TokenError (400, 404, 410) otherwise."""
    data = tokens.read(kind, token)
    # views and clicks of an impression not written yet are honoured from the token; "Why this ad?" is not
    # worth writing a row for
    return find_impression(data.nonce, related=related, token=data, restore=kind in ("view", "click"))


def claim_impression(*, impression: Impression, shopper: Shopper | None) -> bool:
    """Give an anonymous impression to the shopper who clicked it (only if it has none); True if claimed."""
    if shopper is None or impression.shopper_id is not None:
        return False
    claimed = Impression.objects.filter(pk=impression.pk, served_at=impression.served_at, shopper__isnull=True).update(
        shopper=shopper
    )
    if claimed:
        impression.shopper = shopper
    return bool(claimed)


def record(*, kind: str, token: str, ip: str | None, user_agent: str) -> TrackResult:
    """Record a view or click from its signed token; raises tokens.TokenError for tampered, expired, unknown."""
    impression = impression_for(kind, token, related=("campaign",))
    now = timezone.now()
    ip = truncate_ip(ip)
    event = AdEvent(
        impression=impression,
        impression_served_at=impression.served_at,  # the events' partition: the day of their impression
        campaign_id=impression.campaign_id,
        kind=kind,
        ip=ip,
        user_agent=(user_agent or "")[:200],
        occurred_at=now,
    )
    if is_bot(user_agent or "", app=(impression.context or {}).get("client") == "api"):
        event.status = AdEvent.Status.BOT
    elif _rate_limited(kind, ip, now):
        event.status = AdEvent.Status.RATE_LIMITED
    else:
        price = _price(impression, kind)
        try:
            with transaction.atomic():
                # The partial unique index admits one counted event per impression and kind: a replayed or
                # concurrent duplicate fails here (after the first commits) and is logged as a duplicate.
                event.status = AdEvent.Status.ACCEPTED
                event.save(force_insert=True)
                if price > 0:
                    # by id in its day's partition (the events are partitioned by impression_served_at)
                    mine = AdEvent.objects.filter(pk=event.pk, impression_served_at=event.impression_served_at)
                    if charge(campaign_id=impression.campaign_id, amount=price):
                        event.charge = price
                        mine.update(charge=price)
                    else:
                        event.status = AdEvent.Status.OVER_BUDGET
                        mine.update(status=event.status)
                if kind == AdEvent.Kind.VIEW:
                    Impression.objects.filter(
                        pk=impression.pk, served_at=impression.served_at, viewed_at__isnull=True
                    ).update(viewed_at=now)
            return TrackResult(impression, event)
        except IntegrityError:
            event.pk = None
            event.status = AdEvent.Status.DUPLICATE
            event.charge = Decimal(0)
    event.save(force_insert=True)
    return TrackResult(impression, event)
