"""The per-process candidate index: the current snapshot (``snapshot``), rebuilt by ``builder`` when stale.

A process keeps one snapshot of the active campaigns, their approved assets (with Beta posteriors),
targets, page-context lookups and promoted products' display data. It checks a cheap version query
every ``SERVING_INDEX_CHECK_SECONDS`` and rebuilds when campaigns, assets or placements changed (changes
made in the same process invalidate it at once, through signals); spend, which changes with every
billed event, is re-read every ``SERVING_SPEND_REFRESH_SECONDS``.
"""

from __future__ import annotations

import logging
import threading
import time

from django.db import connection

from adengine.conf import settings as ad_settings

from . import builder
from .snapshot import Snapshot

log = logging.getLogger(__name__)


class IndexHolder:
    """The process's current snapshot, rebuilt when stale; thread-safe."""

    def __init__(self) -> None:
        self.snapshot: Snapshot | None = None
        self.checked_at = 0.0
        self.dirty = True
        self.lock = threading.Lock()
        self.rebuilding = False
        self.checking = False
        self.retry_at = 0.0  # after a failed background check (the database is down): not before this

    def get(self) -> Snapshot:
        now = time.monotonic()
        snap = self.snapshot
        if (
            snap is not None
            and not self.dirty
            and now - self.checked_at < float(ad_settings.SERVING_INDEX_CHECK_SECONDS)
            and now - snap.spend_at < float(ad_settings.SERVING_SPEND_REFRESH_SECONDS)
        ):
            return snap
        if snap is not None and not self.dirty and ad_settings.SERVING_INDEX_WAIT_SECONDS is not None:
            # a periodic check (the version, the spend): in the background, so that no request -- nor the
            # requests queued behind the lock -- waits for it; the current snapshot serves meanwhile (None: in
            # the request, as tests that look at their own transaction need)
            with self.lock:
                if not self.checking and now >= self.retry_at:
                    self.checking = True
                    threading.Thread(target=self._check, name="adengine-index-check", daemon=True).start()
            return snap
        with self.lock:
            snap = self._check_locked()
            if snap is None or self.dirty:  # the first build, or an in-process change (m2m ones leave the version)
                self.dirty = False  # before reading: a change during the build marks it dirty again
                version = builder.fingerprint()
                self.checked_at = time.monotonic()
                snap = self.snapshot = builder.build(version)
                self._check_locked()
            return snap

    def _check_locked(self) -> Snapshot | None:
        """The periodic checks, with the lock held: a version changed by another process (an edit, the strategy
        update) starts a background rebuild; stale spend is re-read."""
        snap = self.snapshot
        if snap is None or self.dirty:
            return snap
        now = time.monotonic()
        if now - self.checked_at >= float(ad_settings.SERVING_INDEX_CHECK_SECONDS):
            version = builder.fingerprint()
            self.checked_at = now
            if version != snap.version and not self.rebuilding:
                self.rebuilding = True
                threading.Thread(target=self._rebuild, args=(version,), daemon=True).start()
        if now - snap.spend_at >= float(ad_settings.SERVING_SPEND_REFRESH_SECONDS):
            builder.refresh_spend(snap)
        return snap

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

    def _rebuild(self, version: tuple) -> None:
        try:
            fresh = builder.build(version)
            with self.lock:
                self.snapshot = fresh
        except Exception:
            log.exception("serving index: background rebuild failed; the next check retries")
            with self.lock:
                self.checked_at = 0.0
        finally:
            self.rebuilding = False
            connection.close()

    def invalidate(self) -> None:
        self.dirty = True
