"""The impression log writer: decisions hand it their impressions; it estimates propensities and inserts.

In the default ``async`` mode a background thread per process writes batches every
``SERVING_LOG_FLUSH_SECONDS`` (or sooner when ``SERVING_LOG_BATCH`` rows wait), so a page view waits
neither for the Monte-Carlo propensity estimate nor for the database. Tracking looks impressions up by
their nonce and, when one has not been written yet, flushes this process's pending rows and retries
briefly. ``sync`` mode writes before ``decide()`` returns (tests, one-off scripts).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from dataclasses import dataclass, field

import numpy as np
from django.db import close_old_connections, connection

from adengine.conf import settings as ad_settings
from adengine.models import Impression

from .policy import propensities

log = logging.getLogger(__name__)

COLUMNS = (
    "nonce", "decision_id", "placement_id", "campaign_id", "creative_id", "description_id", "product_id",
    "shopper_id", "language", "position", "propensity", "predicted_ctr", "relevance", "value", "candidates",
    "personalised", "policy", "context", "landing_url", "served_at",
)  # fmt: skip
PROPENSITY = COLUMNS.index("propensity")
_ROW = "(" + ", ".join("%s::jsonb" if c == "context" else "%s" for c in COLUMNS) + ")"


@dataclass
class PendingSlate:
    """One slate's impression rows and what its propensities are estimated from."""

    rows: list[list]
    alpha: np.ndarray
    beta: np.ndarray
    weight: np.ndarray
    group: np.ndarray
    arms: np.ndarray
    epsilon: float
    explored_p: np.ndarray = field(default_factory=lambda: np.empty(0))


def _insert(rows: list[list]) -> None:
    sql = (
        f"INSERT INTO {Impression._meta.db_table} ({', '.join(COLUMNS)}) VALUES "
        + ", ".join([_ROW] * len(rows))
        + " ON CONFLICT (nonce) DO NOTHING"
    )
    with connection.cursor() as cur:
        cur.execute(sql, [value for row in rows for value in row])


class ImpressionLog:
    """Per-process buffer and writer thread (restarted after a fork)."""

    def __init__(self) -> None:
        self._pending: list[PendingSlate] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._wake = threading.Event()
        self._pid: int | None = None
        self._rng = np.random.default_rng()
        self._thread: threading.Thread | None = None

    def write(self, slates: list[PendingSlate]) -> None:
        """Log the slates' impressions (now in sync mode, soon in async mode)."""
        if ad_settings.SERVING_LOG_MODE == "sync":
            self._write(slates)
            return
        with self._lock:
            if self._pid != os.getpid():
                self._start()
            self._pending.extend(slates)
            waiting = sum(len(s.rows) for s in self._pending)
        if waiting >= int(ad_settings.SERVING_LOG_BATCH):
            self._wake.set()

    def flush(self) -> int:
        """Write what is pending now; returns how many impressions were written."""
        with self._lock:
            batch, self._pending = self._pending, []
        if batch:
            self._write(batch)
        return sum(len(s.rows) for s in batch)

    def _write(self, slates: list[PendingSlate]) -> None:
        draws = int(ad_settings.SERVING_PROPENSITY_DRAWS)
        rows = []
        with self._write_lock:  # the generator is not thread-safe
            for s in slates:
                p = propensities(
                    self._rng,
                    alpha=s.alpha,
                    beta=s.beta,
                    weight=s.weight,
                    group=s.group,
                    arms=s.arms,
                    epsilon=s.epsilon,
                    draws=draws,
                )
                for row, value in zip(s.rows, p, strict=True):
                    row[PROPENSITY] = float(value)
                    rows.append(row)
        for start in range(0, len(rows), 500):
            _insert(rows[start : start + 500])

    def _start(self) -> None:
        self._pid = os.getpid()
        self._pending = []  # rows inherited from a parent process are the parent's to write
        self._thread = threading.Thread(target=self._run, name="adengine-impression-log", daemon=True)
        self._thread.start()
        atexit.register(self.flush)

    def stop(self) -> None:
        """Write what is pending and stop this process's writer thread (it closes its connection)."""
        with self._lock:
            thread, self._pid = self._thread, None
        self._wake.set()
        if thread is not None:
            thread.join(timeout=10)
        self.flush()

    def _run(self) -> None:
        pid = os.getpid()
        while self._pid == pid:
            self._wake.wait(float(ad_settings.SERVING_LOG_FLUSH_SECONDS))
            self._wake.clear()
            try:
                self.flush()
            except Exception:
                log.exception("impression log: a batch could not be written")
                close_old_connections()
        connection.close()


impression_log = ImpressionLog()
