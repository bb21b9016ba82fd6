"""Where a copy request stands: its place in the queue, its progress and an estimate of when it is done.

An estimate is learnt, never invented: the median seconds a variant took over the last ``HISTORY`` finished
requests (from started to finished), times the variants still to write ahead of a request and in it; a running
request's own rate once it has written a variant. Without a finished request there is no estimate, and it says so.
Requests are written one at a time (the demo's worker, a worker with concurrency 1 on the interactive queue), so
with more worker processes the estimates are upper bounds.
"""

from __future__ import annotations

import bisect
import itertools
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from adengine.models import GenerationRequest
from adengine.queues import queue_for

HISTORY = 20  # finished requests the pace is learnt from
TASK = "adengine.generate_creatives"
Status = GenerationRequest.Status


@dataclass(frozen=True)
class Pace:
    """How fast copy has been written lately: the median seconds per variant over ``history`` finished requests."""

    seconds_per_variant: float | None
    history: int


@dataclass(frozen=True)
class QueueState:
    """A copy request's place in its queue, its progress and the estimate of the time until it is done."""

    status: str
    queue: str
    position: int | None  # 1: the next to start; None unless queued
    ahead: int | None  # queued requests before it; None unless queued
    running: int  # requests being written now (ahead of every queued one)
    progress: int
    n: int
    elapsed_seconds: float | None  # since a worker started it (running only)
    remaining_seconds: float | None  # estimated seconds until done; None: finished, or no estimate yet
    basis: str  # what the estimate rests on, in words ("" without one)

    @property
    def active(self) -> bool:
        return self.status in (Status.QUEUED, Status.RUNNING)

    def describe(self) -> str:
        """The state in words, for the admin and the API ("2nd in line ...; done in about 3 min (...)")."""
        if self.status == Status.QUEUED:
            if self.position and self.position > 1:
                where = _("number %(position)d in line") % {"position": self.position}
            else:
                where = _("next in line")
            before = [_("%(count)d queued before it") % {"count": self.ahead}] if self.ahead else []
            if self.running:
                before.append(_("%(count)d being written") % {"count": self.running})
            if before:
                where += " (" + ", ".join(before) + ")"
        elif self.status == Status.RUNNING:
            where = _("writing: %(done)d of %(n)d variants") % {"done": self.progress, "n": self.n}
        elif self.status == Status.DONE:
            return _("done")
        else:
            return _("failed")
        if self.remaining_seconds is None:
            return where + _("; no estimate yet (no copy request has finished to learn the pace from)")
        return where + _("; done in %(time)s (%(basis)s)") % {
            "time": duration(self.remaining_seconds),
            "basis": self.basis,
        }


def duration(seconds: float) -> str:
    """A rounded duration in words: "about 40 s", "about 4 min", "about 1 h 5 min"."""
    seconds = max(0.0, seconds)
    if seconds < 90:
        return _("about %(s)d s") % {"s": max(1, round(seconds / 5) * 5 if seconds >= 10 else round(seconds))}
    minutes = round(seconds / 60)
    if minutes < 60:
        return _("about %(m)d min") % {"m": minutes}
    return _("about %(h)d h %(m)d min") % {"h": minutes // 60, "m": minutes % 60}


def pace(*, history: int = HISTORY) -> Pace:
    """The median seconds per variant of the last ``history`` requests finished with every variant written: each
    request's time from start to finish, less the time it spent loading the model (``stats["load_seconds"]``: a
    worker's first request loads it, and converts it once per machine; the requests after it do not)."""
    rows = (
        GenerationRequest.objects.filter(status=Status.DONE, started_at__isnull=False, finished_at__isnull=False)
        .order_by("-finished_at")
        .values_list("n", "started_at", "finished_at", "stats")[:history]
    )
    rates = []
    for n, started, finished, stats in rows:
        if not n or finished < started:
            continue
        loading = stats.get("load_seconds") if isinstance(stats, dict) else None
        took = (finished - started).total_seconds()
        if isinstance(loading, int | float) and not isinstance(loading, bool) and 0 < loading < took:
            took -= loading
        rates.append(took / n)
    return Pace(statistics.median(rates) if rates else None, len(rates))


def _pace_words(p: Pace) -> str:
    return ngettext(
        "at %(rate)s a variant, the median of the last finished request",
        "at %(rate)s a variant, the median of the last %(count)d finished requests",
        p.history,
    ) % {"rate": _("%(s).1f s") % {"s": p.seconds_per_variant or 0.0}, "count": p.history}


def _running_remaining(n: int, done: int, started: datetime | None, now: datetime, p: Pace) -> tuple[float | None, str]:
    """Seconds left of a running request: from its own rate once a variant is written, else from the pace."""
    elapsed = (now - started).total_seconds() if started else None
    if elapsed is not None and done > 0:
        return max(0.0, elapsed / done * (n - done)), _("at its own rate so far")
    if p.seconds_per_variant is None:
        return None, ""
    return max(0.0, n * p.seconds_per_variant - (elapsed or 0.0)), _pace_words(p)


def queue_states(requests: Iterable[GenerationRequest], *, now: datetime | None = None) -> dict:
    """Each request's QueueState by primary key, from two queries however many requests are asked about."""
    requests = list(requests)
    now = now or timezone.now()
    queue = queue_for(TASK) or "celery"
    active = list(
        GenerationRequest.objects.filter(status__in=[Status.QUEUED, Status.RUNNING])
        .order_by("created_at", "pk")
        .values("pk", "status", "n", "progress", "started_at", "created_at")
    )
    p = pace()
    running = [r for r in active if r["status"] == Status.RUNNING]
    queued = [r for r in active if r["status"] == Status.QUEUED]
    keys = [(r["created_at"], str(r["pk"])) for r in queued]  # the order of the queue (oldest first)
    variants_before = list(itertools.accumulate((r["n"] for r in queued), initial=0))
    running_left = [_running_remaining(r["n"], r["progress"], r["started_at"], now, p)[0] for r in running]
    states = {}
    for req in requests:
        elapsed = remaining = position = ahead = None
        basis = ""
        if req.status == Status.RUNNING:
            elapsed = (now - req.started_at).total_seconds() if req.started_at else None
            remaining, basis = _running_remaining(req.n, req.progress, req.started_at, now, p)
        elif req.status == Status.QUEUED:
            ahead = bisect.bisect_left(keys, (req.created_at, str(req.pk)))
            position = ahead + 1
            if p.seconds_per_variant is not None and None not in running_left:
                variants = variants_before[ahead] + req.n
                remaining = sum(running_left) + variants * p.seconds_per_variant
                basis = _pace_words(p)
        states[req.pk] = QueueState(
            status=req.status,
            queue=queue,
            position=position,
            ahead=ahead,
            running=len(running),
            progress=req.progress,
            n=req.n,
            elapsed_seconds=elapsed,
            remaining_seconds=remaining,
            basis=basis,
        )
    return states


def queue_state(request: GenerationRequest, *, now: datetime | None = None) -> QueueState:
    """One request's QueueState."""
    return queue_states([request], now=now)[request.pk]


def waiting_requests(*, campaign_id: int) -> list[tuple[GenerationRequest, QueueState]]:
    """A campaign's queued and running copy requests, oldest first, each with its QueueState."""
    found = list(
        GenerationRequest.objects.filter(campaign_id=campaign_id, status__in=[Status.QUEUED, Status.RUNNING]).order_by(
            "created_at"
        )
    )
    states = queue_states(found)
    return [(r, states[r.pk]) for r in found]
