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
        with self.lock:
            snap = self.snapshot
            now = time.monotonic()
            if snap is None or self.dirty or now - self.checked_at >= float(ad_settings.SERVING_INDEX_CHECK_SECONDS):
                forced = snap is None or self.dirty  # an in-process change (m2m ones leave the version as it is)
                self.dirty = False  # before reading: a change during the build marks it dirty again
                version = builder.fingerprint()
                self.checked_at = now
                if forced:
                    snap = self.snapshot = builder.build(version)
                elif version != snap.version and not self.rebuilding:
                    # changed by another process (an edit, the strategy update): rebuild in the background and
                    # keep serving the current snapshot meanwhile, so no request waits for a large rebuild
                    self.rebuilding = True
                    threading.Thread(target=self._rebuild, args=(version,), daemon=True).start()
            if now - snap.spend_at >= float(ad_settings.SERVING_SPEND_REFRESH_SECONDS):
                builder.refresh_spend(snap)
            return snap

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
