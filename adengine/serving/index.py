"""The per-process candidate index: the current snapshot (``snapshot``), built by ``builder`` and kept up to date.

A process keeps one snapshot of the active campaigns, their approved assets (with Beta posteriors), targets,
page-context lookups and promoted products' display data. Readers get the current snapshot and never see it
change: an update builds a new one, sharing the unchanged campaigns' parts, and swaps it in.

- Changes made in this process (signals) name their campaigns: the next read applies them at once
  (``builder.update``, a fraction of a second at 10,000 campaigns).
- Changes made by other processes (other web servers, the workers' strategy update) are found by a fingerprint
  query every ``SERVING_INDEX_CHECK_SECONDS`` and applied the same way; the check and the update run in a
  background thread while requests go on with the current snapshot (no request waits for either).
- A full build runs when there is no snapshot, after ``invalidate()`` without campaigns, when the active interest
  model changed, and every ``SERVING_INDEX_FULL_REBUILD_SECONDS`` as a safety net (in the background).
- Spend, which changes with every billed event, is re-read every ``SERVING_SPEND_REFRESH_SECONDS``, in the
  background too (unless ``SERVING_INDEX_WAIT_SECONDS`` is None).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable

from django.db import connection

from adengine.conf import settings as ad_settings

from . import builder
from .snapshot import Snapshot

log = logging.getLogger(__name__)


class IndexHolder:
    """The process's current snapshot, updated when stale; thread-safe."""

    def __init__(self) -> None:
        self.snapshot: Snapshot | None = None
        self.checked_at = 0.0
        self.dirty = True  # a full build is due before the next read
        self.pending: set[int] | None = None  # campaigns changed in this process (empty: placements and the like)
        self.lock = threading.Lock()
        self.pending_lock = threading.Lock()
        self.rebuilding = False
        self.during_job: set[int] = set()  # campaigns changed here while a background job was building
        self.checking = False
        self.retry_at = 0.0  # after a failed background check (the database is down): not before this

    def _fresh(self, snap: Snapshot | None, now: float) -> bool:
        return (
            snap is not None
            and not self.dirty
            and self.pending is None
            and now - self.checked_at < float(ad_settings.SERVING_INDEX_CHECK_SECONDS)
            and now - snap.spend_at < float(ad_settings.SERVING_SPEND_REFRESH_SECONDS)
        )

    def get(self) -> Snapshot:
        now = time.monotonic()
        snap = self.snapshot
        if self._fresh(snap, now):
            return snap
        if (
            snap is not None
            and not self.dirty
            and self.pending is None
            and ad_settings.SERVING_INDEX_WAIT_SECONDS is not None
        ):
            # only the periodic checks are due (the fingerprint, the spend): in the background, so that no request
            # -- nor the requests queued behind the lock -- waits for them; the current snapshot serves meanwhile
            # (None: in the request, as tests that look at their own transaction need)
            with self.lock:
                if not self.checking and now >= self.retry_at:
                    self.checking = True
                    threading.Thread(target=self._check, name="adengine-index-check", daemon=True).start()
            return snap
        with self.lock:
            snap = self.snapshot
            if snap is None or self.dirty:
                self.dirty, self.pending = False, None  # before reading: a change during the build marks it again
                self.checked_at = time.monotonic()
                snap = self.snapshot = builder.build(builder.fingerprint())
            elif self.pending is not None:
                with self.pending_lock:
                    changed, self.pending = self.pending, None
                snap = self.snapshot = builder.update(snap, campaign_ids=changed)
                if self.rebuilding:
                    self.during_job |= changed
            self._check_locked()
            return snap

    def _check_locked(self) -> None:
        """The periodic checks, with the lock held: has another process changed something (an edit, the strategy
        update), or is the safety net due? -- checked and applied in the background, requests going on with the
        current snapshot meanwhile; and stale spend is re-read."""
        snap = self.snapshot
        if snap is None or self.dirty:
            return
        now = time.monotonic()
        if now - self.checked_at >= float(ad_settings.SERVING_INDEX_CHECK_SECONDS) and not self.rebuilding:
            self.checked_at = now
            full_every = float(ad_settings.SERVING_INDEX_FULL_REBUILD_SECONDS)
            full = bool(full_every) and now - snap.full_at >= full_every
            self.rebuilding = True
            self.during_job = set()
            threading.Thread(target=self._background, args=(snap, full), daemon=True).start()
        if now - snap.spend_at >= float(ad_settings.SERVING_SPEND_REFRESH_SECONDS):
            builder.refresh_spend(snap)

    def _check(self) -> None:
        try:
            with self.lock:
                self._check_locked()
        except Exception:
            log.exception("serving index: the periodic check failed; retried in a second")
            self.retry_at = time.monotonic() + 1.0
        finally:
            self.checking = False
            connection.close()

    def _background(self, base: Snapshot, full: bool) -> None:
        try:
            version = builder.fingerprint()
            if not full and version == base.version:
                return
            fresh = builder.build(version) if full else builder.update(base, version)
            with self.lock:
                current = self.snapshot
                if current is not None and current.full_at != base.full_at:
                    self.checked_at = 0.0  # built in full here meanwhile (newer than this): check again on top
                    return
                if current is not base:  # this process applied its own changes meanwhile: again on top
                    self.invalidate(self.during_job)  # (re-reading a campaign is idempotent)
                self.snapshot = fresh
        except Exception:
            log.exception("serving index: background update failed; the next check retries")
            with self.lock:
                self.checked_at = 0.0
        finally:
            self.rebuilding = False
            connection.close()

    def invalidate(self, campaign_ids: Iterable[int] | None = None) -> None:
        """Campaigns changed in this process (their ids: re-read them; an empty list: the placements, experiments or
        click model changed); None: anything may have changed, build in full."""
        if campaign_ids is None:
            self.dirty = True
            return
        with self.pending_lock:
            self.pending = (self.pending or set()) | set(campaign_ids)
