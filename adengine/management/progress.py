"""Progress bars of adengine's management commands: tqdm on the command's stderr, never its stdout.

stdout carries a command's results (some end with one JSON line), so a bar never goes there. A bar is drawn
on a terminal at the default verbosity, never with ``--verbosity 0``, and with ``--verbosity 2`` or more also
when stderr is a file or a pipe (a log then gets a line every LOG_INTERVAL seconds instead of a redrawn bar).
"""

from __future__ import annotations

from collections.abc import Callable

from tqdm import tqdm

LOG_INTERVAL = 10.0  # seconds between a bar's lines when stderr is not a terminal


def _stream(command):
    return getattr(command.stderr, "_out", command.stderr)  # OutputWrapper's own stream


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def showing(command, verbosity: int) -> bool:
    """Whether the command draws progress bars at this verbosity on its stderr."""
    return verbosity >= 2 or (verbosity >= 1 and _isatty(_stream(command)))


def bar(command, verbosity: int, *, desc: str, total: int | None = None, unit: str = "") -> tqdm:
    """A progress bar on ``command``'s stderr (disabled as the module says); use it as a context manager."""
    stream = _stream(command)
    tty = _isatty(stream)
    return tqdm(
        total=total,
        desc=desc,
        unit=f" {unit}" if unit else "it",
        file=stream,
        disable=not showing(command, verbosity),
        dynamic_ncols=tty,
        mininterval=0.1 if tty else LOG_INTERVAL,
        leave=True,
    )


def follow(progress_bar: tqdm) -> Callable[[int, int], None]:
    """A ``progress(done, total)`` callback that moves ``progress_bar`` to ``done`` of ``total``."""

    def update(done: int, total: int) -> None:
        if progress_bar.total != total:
            progress_bar.total = total
        progress_bar.update(done - progress_bar.n)

    return update


def note(command, message: str) -> None:
    """A line on ``command``'s stderr that does not tear a progress bar being drawn there."""
    tqdm.write(message, file=_stream(command))
