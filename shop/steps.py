"""The demo's start-up as numbered steps with measured times: "[5/12] importing the demo data ... done in 12 s".

Each step prints a line when it starts (its commands' own output follows) and one when it ends, with the time
it took, measured; a step with nothing to do says why. Work handed to the Celery worker is listed at the end
with where to follow it, since its time is the worker's, not the launcher's.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO


def took(seconds: float) -> str:
    """A measured duration, as precise as it is worth: "0.4 s", "12 s", "3 min 5 s"."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s"


class Steps:
    """Numbered steps of a known count; ``step`` times one, ``skip`` says why one had nothing to do."""

    def __init__(self, total: int, *, out: TextIO | None = None, clock: Callable[[], float] = time.monotonic):
        self.total = total
        self.out = out
        self.clock = clock
        self.number = 0
        self.started = clock()
        self.handed: list[str] = []  # work queued for the Celery workers

    def _say(self, text: str) -> None:
        print(text, file=self.out or sys.stdout, flush=True)

    def _next(self) -> str:
        self.number += 1
        return f"[{self.number}/{self.total}]"

    @contextmanager
    def step(self, what: str) -> Iterator[None]:
        """Time the body as one step; a failure is reported with the time it took, and raised."""
        mark = self._next()
        self._say(f"{mark} {what} ...")
        start = self.clock()
        try:
            yield
        except BaseException:
            self._say(f"{mark} {what} ... failed after {took(self.clock() - start)}")
            raise
        self._say(f"{mark} {what} ... done in {took(self.clock() - start)}")

    def skip(self, what: str, why: str) -> None:
        """A step with nothing to do this time, and why."""
        self._say(f"{self._next()} {what}: skipped, {why}")

    def hand_over(self, what: str) -> None:
        """Remember work queued for the Celery workers, for ``summary``."""
        self.handed.append(what)

    def summary(self, follow: str) -> None:
        """The total time, and what the worker still does with how to follow it."""
        self._say(f"started in {took(self.clock() - self.started)}")
        if self.handed:
            self._say("queued for the Celery workers (each runs its queue one task at a time, in the background):")
            for what in self.handed:
                self._say(f"  - {what}")
            self._say(follow)
