"""The impression log writer: decisions hand it their impressions; it inserts them.

In the default ``async`` mode a background thread per process writes batches every
``SERVING_LOG_FLUSH_SECONDS`` (or sooner when ``SERVING_LOG_BATCH`` rows wait), so a page view does not wait
for the database. Rows are written with their propensity unknown (NaN); every ``PROPENSITY_FILL_SECONDS`` the
writer hands the ids it wrote to the strategy queue's task ``adengine.fill_propensities``, which computes them
from each slate's logged candidate set (``propensity``): the Monte-Carlo estimate runs in a worker, not in the
web process. ``sync`` mode writes, and fills the propensities, before ``decide()`` returns (tests, one-off
scripts).

Nothing served is lost on the way:

- **shutdown**: SIGTERM (a handler installed in the main thread at start-up, chained to the one already
  there), interpreter exit (``atexit``, which gunicorn workers and runserver's autoreloader reach) and
  uWSGI's ``uwsgi.atexit`` hook all *drain* the log: from then on decisions write their rows before they
  return, and what is pending is written (for up to ``SERVING_LOG_SHUTDOWN_SECONDS``);
- **database errors**: a batch that cannot be written (connection lost, server down) is kept and retried
  with a backoff up to ``SERVING_LOG_RETRY_MAX_SECONDS``; at most ``SERVING_LOG_MAX_PENDING`` impressions
  wait, the oldest beyond that are dropped, and every drop is counted in ``stats`` and logged at ERROR
  with the number. A row the database refuses (say its campaign was deleted meanwhile) is dropped alone.

Tracking looks impressions up by their nonce and, when one has not been written yet, flushes this
process's pending rows and retries briefly (then restores the row from its signed token:
``adengine.services.tracking``).
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
import time
from collections import deque

from django.db import (
    DatabaseError,
    InterfaceError,
    OperationalError,
    close_old_connections,
    connection,
)

from adengine.conf import settings as ad_settings

from .rows import ImpressionRow, insert_sql

log = logging.getLogger(__name__)

CHUNK = 500

stats: dict[str, object] = {
    "written": 0,  # impressions inserted by this process
    "retries": 0,  # failed attempts to write a batch (each retried later)
    "dropped": 0,  # impressions given up: buffer full, refused by the database, or still unwritten at exit
    "pending": 0,  # impressions waiting now
    "fill_sent": 0,  # impressions handed to the propensity task
    "last_error": "",
}
"""This process's impression log counters (for a health check or the admin)."""
_stats_lock = threading.Lock()


def _count(key: str, n: int = 1) -> int:
    with _stats_lock:
        stats[key] = int(stats[key]) + n
        return stats[key]


def _insert(rows: list[ImpressionRow]) -> list[int]:
    """Insert; returns the ids of the rows written."""
    with connection.cursor() as cur:
        cur.execute(insert_sql(len(rows)), [value for row in rows for value in row.values()])
        return [r[0] for r in cur.fetchall()]


TRANSIENT = (OperationalError, InterfaceError)


class ImpressionLog:
    """Per-process buffer and writer thread (restarted after a fork)."""

    def __init__(self) -> None:
        self._ready: deque[ImpressionRow] = deque()  # rows to insert (kept here while the database fails)
        self._inflight = 0  # rows taken by a writer and not yet written or put back
        self._unfilled: list[int] = []  # ids written whose propensities are still to be computed
        self._fill_sent_at = 0.0
        # re-entrant: the SIGTERM handler runs in the main thread, which may be inside write() (gunicorn's sync
        # worker serves requests there)
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._pid: int | None = None
        self._thread: threading.Thread | None = None
        self._closing = False
        self._dropped_unlogged = 0
        self._atexit = False

    # ---------------------------------------------------------------- the request path
    def write(self, rows: list[ImpressionRow], *, model: object = None) -> None:
        """Log the impressions (now in sync mode or while shutting down, soon in async mode); ``model``: the click
        model that served them (sync mode computes their propensities before writing)."""
        if ad_settings.SERVING_LOG_MODE == "sync":
            from .propensity import fill_rows

            fill_rows(rows, model=model)  # sync mode is for tests and scripts: the rows are complete when written
            self._insert_now(rows)
            return
        with self._lock:
            if self._pid != os.getpid():
                self._start()
            closing = self._closing
            if not closing:
                self._ready.extend(rows)
                waiting = len(self._ready)
                self._trim()
        if closing:  # shutting down: the response waits until its impressions are written (or kept)
            self._queue(rows)
            self._insert_ready()
        elif waiting >= int(ad_settings.SERVING_LOG_BATCH):
            self._wake.set()

    def flush(self) -> int:
        """Write what is pending now; returns how many impressions were written (rows kept on a database error)."""
        return self._flush()[0]

    # ---------------------------------------------------------------- writing
    def _waiting(self) -> int:
        return len(self._ready)

    def _insert_now(self, rows: list[ImpressionRow]) -> list[int]:
        ids: list[int] = []
        for start in range(0, len(rows), CHUNK):
            ids.extend(self._insert_chunk(rows[start : start + CHUNK]))
        return ids

    def _insert_chunk(self, rows: list[ImpressionRow]) -> list[int]:
        """Insert; a row the database refuses (not a lost connection) is dropped alone, counted and logged."""
        try:
            ids = _insert(rows)
        except TRANSIENT:
            raise
        except DatabaseError:
            if connection.in_atomic_block:  # sync mode inside the caller's transaction: theirs to handle
                raise
            if len(rows) == 1:
                self._drop(1, "refused by the database", exc_info=True)
                return []
            ids = []
            for row in rows:  # find the bad row: the others are written
                ids.extend(self._insert_chunk([row]))
            return ids
        _count("written", len(rows))
        return ids

    def _queue(self, rows: list[ImpressionRow]) -> None:
        with self._lock:
            self._ready.extend(rows)
            self._trim()

    def _flush(self) -> tuple[int, BaseException | None]:
        return self._insert_ready()

    def _insert_ready(self) -> tuple[int, BaseException | None]:
        written = 0
        while True:
            with self._lock:
                if not self._ready:
                    stats["pending"] = self._waiting()
                    return written, None
                chunk = [self._ready.popleft() for _ in range(min(CHUNK, len(self._ready)))]
                self._inflight += len(chunk)
            try:
                ids = self._insert_chunk(chunk)
                written += len(ids)  # a row the database refused is dropped (and counted so), not written
                with self._lock:
                    self._unfilled.extend(ids)
            except Exception as exc:
                with self._lock:  # kept, in order, for the next attempt
                    self._ready.extendleft(reversed(chunk))
                    stats["pending"] = self._waiting()
                _count("retries")
                stats["last_error"] = f"{type(exc).__name__}: {exc}"[:300]
                _discard_connection()
                return written, exc
            finally:
                with self._lock:
                    self._inflight -= len(chunk)

    def _send_fill(self, *, force: bool = False) -> None:
        """Hand the ids written since the last time to the strategy queue's propensity task (every
        PROPENSITY_FILL_SECONDS); with the broker down they are left to beat's sweep."""
        now = time.monotonic()
        if not force and now - self._fill_sent_at < float(ad_settings.PROPENSITY_FILL_SECONDS):
            return
        with self._lock:
            ids, self._unfilled = self._unfilled, []
        self._fill_sent_at = now
        if not ids:
            return
        try:
            from adengine import tasks

            tasks.fill_propensities.apply_async(kwargs={"impression_ids": ids}, retry=False)
            _count("fill_sent", len(ids))
        except Exception as exc:
            log.warning("impression log: could not send %d impression(s) to the propensity task (%s); beat's "
                        "sweep will fill them", len(ids), exc)  # fmt: skip

    def _trim(self) -> None:
        """Keep at most SERVING_LOG_MAX_PENDING impressions waiting (called with the lock held): drop the oldest."""
        excess = self._waiting() - int(ad_settings.SERVING_LOG_MAX_PENDING)
        dropped = 0
        while excess > 0 and self._ready:
            self._ready.popleft()
            excess -= 1
            dropped += 1
        if dropped:
            _count("dropped", dropped)
            self._dropped_unlogged += dropped  # logged by the writer thread, not once per request

    def _drop(self, n: int, why: str, exc_info: bool = False) -> None:
        total = _count("dropped", n)
        log.error(
            "impression log: %d impression(s) dropped (%s); %d dropped in all by this process",
            n,
            why,
            total,
            exc_info=exc_info,
        )

    # ---------------------------------------------------------------- the writer thread
    def _start(self) -> None:
        self._pid = os.getpid()
        self._ready = deque()  # rows inherited from a parent process are the parent's to write
        self._unfilled = []
        self._inflight = 0
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="adengine-impression-log", daemon=True)
        self._thread.start()
        if not self._atexit:
            atexit.register(self._at_exit)
            self._atexit = True

    def _run(self) -> None:
        pid = os.getpid()
        interval = float(ad_settings.SERVING_LOG_FLUSH_SECONDS)
        delay = interval
        failing = False
        while self._pid == pid:
            if failing:  # back off: new rows do not wake a writer whose database is down
                time.sleep(min(delay, 0.2) if self._closing else delay)
            else:
                self._wake.wait(0.01 if self._closing else interval)
                self._wake.clear()
            try:
                written, error = self._flush()
            except Exception as exc:  # not the database: log it and go on
                log.exception("impression log: a batch could not be prepared")
                written, error = 0, exc
            self._send_fill(force=self._closing)
            if self._dropped_unlogged:
                n, self._dropped_unlogged = self._dropped_unlogged, 0
                log.error(
                    "impression log: %d impression(s) dropped (more than SERVING_LOG_MAX_PENDING waiting); "
                    "%d dropped in all by this process",
                    n,
                    stats["dropped"],
                )
            if error is not None:
                delay = min(max(delay * 2, 0.1), float(ad_settings.SERVING_LOG_RETRY_MAX_SECONDS))
                if not failing:
                    log.warning("impression log: database unavailable (%s); %d waiting, retrying", error, written)
                failing = True
            else:
                if failing:
                    log.warning("impression log: database back; writing resumed")
                failing, delay = False, interval
        connection.close()

    # ---------------------------------------------------------------- shutdown
    def drain(self, timeout: float | None = None, *, final: bool = False, here: bool = True) -> bool:
        """Write everything pending, retrying for up to ``timeout`` seconds; from now on writes are immediate.

        ``here``: this thread writes too (else it only waits for the writer thread: a signal handler must not
        use the connection of the code it interrupted). Returns whether nothing is left. ``final`` (the process
        is ending): what is left is counted as dropped and logged at ERROR.
        """
        timeout = float(ad_settings.SERVING_LOG_SHUTDOWN_SECONDS) if timeout is None else timeout
        with self._lock:
            self._closing = True
            running = self._pid == os.getpid()
            thread = self._thread
        if not running:
            return True
        here = here or thread is None or not thread.is_alive()
        self._wake.set()
        deadline = time.monotonic() + timeout
        delay, error = 0.05, None
        while True:
            if here:
                try:
                    error = self._flush()[1]
                except Exception as exc:
                    error = exc
            with self._lock:
                left = self._waiting() + self._inflight
            if left == 0:
                if here:
                    self._send_fill(force=True)
                return True
            if time.monotonic() >= deadline:
                break
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())) if error is not None or not here else 0.01)
            delay = min(delay * 2, 0.5)
        if final:
            with self._lock:
                lost = self._waiting()
                self._ready = deque()
            why = stats["last_error"] if error is None else error
            if lost:
                self._drop(lost, f"not written within SERVING_LOG_SHUTDOWN_SECONDS of shutdown; last error: {why}")
        return False

    def _at_exit(self) -> None:
        if self._pid == os.getpid():
            self.drain(final=True)

    def stop(self) -> None:
        """Write what is pending and stop this process's writer thread (it closes its connection)."""
        self.drain()
        with self._lock:
            thread, self._pid = self._thread, None
            self._closing = False
        self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)


def _discard_connection() -> None:
    """After a failed write: drop this thread's connection so the next attempt opens a new one."""
    try:
        connection.close()
    except Exception:  # a broken connection may fail to close; it is replaced either way
        pass
    close_old_connections()


impression_log = ImpressionLog()


# ---------------------------------------------------------------- process hooks
_installed = False


def _on_sigterm(previous):
    def handler(signum, frame):
        try:
            impression_log.drain(final=previous == signal.SIG_DFL, here=False)
        except Exception:  # never keep a process from stopping
            log.exception("impression log: draining on SIGTERM failed")
        if callable(previous):
            previous(signum, frame)
        elif previous == signal.SIG_DFL:  # what SIGTERM did before: end the process, by the signal
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)

    handler.adengine_previous = previous  # type: ignore[attr-defined]
    return handler


def install_shutdown_hooks() -> None:
    """Drain the log on SIGTERM (chained to the handler already there; main thread only) and uWSGI's atexit.

    Interpreter exit is covered by ``atexit`` once the writer starts. Safe to call more than once.
    """
    global _installed
    if _installed:
        return
    _installed = True
    try:
        import uwsgi  # type: ignore[import-not-found]  # only inside uWSGI
    except ImportError:
        uwsgi = None
    if uwsgi is not None:
        previous_atexit = getattr(uwsgi, "atexit", None)

        def at_uwsgi_exit():
            impression_log._at_exit()
            if callable(previous_atexit):
                previous_atexit()

        uwsgi.atexit = at_uwsgi_exit
    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers can only be set from the main thread: atexit (and the hooks) remain
    previous = signal.getsignal(signal.SIGTERM)
    if previous is None or previous == signal.SIG_IGN:
        return  # set outside Python (nothing to chain to), or SIGTERM is ignored (the process goes on)
    if getattr(previous, "adengine_previous", None) is not None:
        return
    signal.signal(signal.SIGTERM, _on_sigterm(previous))
