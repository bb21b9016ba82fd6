"""Counters that every web process must agree on: frequency caps, reserved before an ad is shown.

A process's own view of what a shopper saw today (``eligibility.SeenToday``) is a cache: it is re-read now and
then and misses what other web servers showed meanwhile. So a decision that is about to show an ad of a capped
campaign first *reserves* it here, atomically, and drops it if another process took the last impression the cap
allows. The counters live in PostgreSQL (``SHARED_COUNTERS = "database"``, the default: an UNLOGGED table, one
conditional upsert per decision with capped ads) or in Redis (a URL: one Lua script per decision). Budgets and
per-network click limits need no counter here: they are charged by one conditional UPDATE / upsert each in
PostgreSQL (``services.budgets.charge``, ``services.tracking._rate_limited``).
"""

from __future__ import annotations

import datetime as dt
import threading
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from adengine import clock
from adengine.conf import settings as ad_settings
from adengine.models import CapCounter

#: The URL schemes of a Redis server that SHARED_COUNTERS takes (redis-py's, and the embedded broker's socket form).
REDIS_SCHEMES = ("redis", "rediss", "unix", "redis+socket")
HOW_TO_SET = "Use 'database' or a Redis URL (redis://, rediss://, unix:// or redis+socket://)."

#: Redis keys live two days: a day's counts are needed until the shop's day ends, wherever the server's clock is.
REDIS_TTL_SECONDS = 2 * 86400

# For each campaign id in ARGV (pairs of id, cap after the TTL): take one impression if the count is under the cap.
# One key per shopper and day (a hash of campaign -> count), so the script touches one key: fine on a cluster.
_RESERVE = """
local reserved = {}
for i = 2, #ARGV, 2 do
  local count = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0')
  if count < tonumber(ARGV[i + 1]) then
    redis.call('HINCRBY', KEYS[1], ARGV[i], 1)
    reserved[#reserved + 1] = ARGV[i]
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return reserved
"""


class DatabaseCounters:
    """The counters in PostgreSQL (``CapCounter``)."""

    table = CapCounter._meta.db_table

    def reserve(self, shopper_id: int, caps: dict[int, int], day: dt.date) -> set[int]:
        """Take one impression of each campaign in ``caps`` (campaign id -> cap) for the shopper on ``day`` where
        the cap allows; returns the campaign ids taken.

        One statement: a new row counts 1; an existing one is incremented only while under its cap. PostgreSQL's
        ON CONFLICT locks the row and re-checks the condition on its newest version, so concurrent reservations
        of the last impression a cap allows are serialised and exactly one wins.
        """
        if not caps:
            return set()
        with connection.cursor() as cur:
            cur.execute(
                "WITH c AS (SELECT * FROM unnest(%s::bigint[], %s::int[]) AS u(id, cap) WHERE u.cap > 0) "
                f"INSERT INTO {self.table} AS t (shopper_id, campaign_id, day, count) SELECT %s, c.id, %s, 1 FROM c "
                "ON CONFLICT (shopper_id, day, campaign_id) DO UPDATE SET count = t.count + 1 "
                "WHERE t.count < (SELECT cap FROM c WHERE c.id = t.campaign_id) "
                "RETURNING campaign_id",
                [list(caps), [int(n) for n in caps.values()], shopper_id, day],
            )
            return {row[0] for row in cur.fetchall()}

    def release(self, shopper_id: int, campaign_ids: list[int], day: dt.date) -> None:
        """Give back one reserved impression of each campaign (a decision that reserved it chose again)."""
        with connection.cursor() as cur:
            cur.execute(
                f"UPDATE {self.table} SET count = count - 1 WHERE shopper_id = %s AND day = %s "
                "AND campaign_id = ANY(%s::bigint[]) AND count > 0",
                [shopper_id, day, list(campaign_ids)],
            )

    def seen_query(self, shopper_id: int, day: dt.date) -> tuple[str, list]:
        """The query of ``seen`` (rows of campaign id, count), for a caller that folds it into its own statement
        to save a round trip (``eligibility._read_seen``)."""
        return f"SELECT campaign_id, count FROM {self.table} WHERE shopper_id = %s AND day = %s", [shopper_id, day]

    def seen(self, shopper_id: int, day: dt.date) -> dict[int, int]:
        """campaign id -> impressions reserved for the shopper on ``day``."""
        with connection.cursor() as cur:
            cur.execute(*self.seen_query(shopper_id, day))
            return dict(cur.fetchall())

    def purge(self, *, before: dt.date) -> int:
        """Drop the counts of days before ``before``; returns how many rows went."""
        deleted, _ = CapCounter.objects.filter(day__lt=before).delete()
        return deleted


class RedisCounters:
    """The counters in Redis: one hash per shopper and day, reserved by a Lua script (atomic on the server)."""

    def __init__(self, url: str) -> None:
        import redis

        self.url = url
        parts = urlsplit(url)
        if parts.scheme not in REDIS_SCHEMES:
            raise ImproperlyConfigured(
                f"ADENGINE['SHARED_COUNTERS'] is {url!r}: use 'database' or a Redis URL "
                "(redis://, rediss://, unix:// or redis+socket://)."
            )
        if parts.scheme in ("redis+socket", "unix"):  # the embedded broker's form, and redis-py's own
            self.client = redis.Redis(unix_socket_path=parts.path, socket_timeout=2, socket_connect_timeout=2)
        else:
            self.client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._reserve = self.client.register_script(_RESERVE)

    @staticmethod
    def key(shopper_id: int, day: dt.date) -> str:
        return f"adengine:caps:{day:%Y%m%d}:{{{shopper_id}}}"

    def reserve(self, shopper_id: int, caps: dict[int, int], day: dt.date) -> set[int]:
        wanted = {c: int(n) for c, n in caps.items() if int(n) > 0}
        if not wanted:
            return set()
        argv: list[int] = [REDIS_TTL_SECONDS]
        for campaign_id, cap in wanted.items():
            argv += [campaign_id, cap]
        return {int(c) for c in self._reserve(keys=[self.key(shopper_id, day)], args=argv)}

    def release(self, shopper_id: int, campaign_ids: list[int], day: dt.date) -> None:
        pipe = self.client.pipeline()
        for campaign_id in campaign_ids:
            pipe.hincrby(self.key(shopper_id, day), campaign_id, -1)
        pipe.execute()

    def seen_query(self, shopper_id: int, day: dt.date) -> None:
        """Not SQL: ``seen`` is a separate round trip to Redis."""
        return None

    def seen(self, shopper_id: int, day: dt.date) -> dict[int, int]:
        return {int(k): int(v) for k, v in self.client.hgetall(self.key(shopper_id, day)).items()}

    def purge(self, *, before: dt.date) -> int:
        return 0  # keys expire by themselves


_lock = threading.Lock()
_backend: tuple[str, DatabaseCounters | RedisCounters] | None = None


def counters() -> DatabaseCounters | RedisCounters:
    """The configured counters (one client per process, rebuilt when the setting changes)."""
    global _backend
    where = str(ad_settings.SHARED_COUNTERS or "database")
    current = _backend
    if current is not None and current[0] == where:
        return current[1]
    with _lock:
        backend = DatabaseCounters() if where == "database" else RedisCounters(where)
        _backend = (where, backend)
        return backend


def reserve(shopper_id: int, caps: dict[int, int], *, day: dt.date | None = None) -> set[int]:
    """Reserve one impression of each capped campaign for the shopper today; returns the campaign ids granted."""
    return counters().reserve(shopper_id, caps, day or clock.today())


def release(shopper_id: int, campaign_ids: list[int], *, day: dt.date | None = None) -> None:
    """Give back reservations that were not used."""
    if campaign_ids:
        counters().release(shopper_id, campaign_ids, day or clock.today())


def purge(*, today: dt.date | None = None) -> int:
    """Forget counts of days before yesterday (the strategy job runs it)."""
    return counters().purge(before=(today or clock.today()) - dt.timedelta(days=1))
