"""The demo's start-up steps: numbered, each with the time it took as measured, and the worker's share named."""

from __future__ import annotations

import io
import subprocess
import sys
import time

import pytest

from shop.steps import Steps, took


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_steps_are_numbered_and_timed_by_the_clock():
    out, clock = io.StringIO(), Clock()
    steps = Steps(3, out=out, clock=clock)
    with steps.step("migrating the database"):
        clock.now += 2.5
    steps.skip("importing the demo data", "loaded on an earlier start")
    with steps.step("simulating 3 days of traffic"):
        clock.now += 125
    steps.hand_over("generated copy for the first 5 demo campaigns")
    steps.summary("Follow them at /admin/adengine/generationrequest/")
    assert out.getvalue().splitlines() == [
        "[1/3] migrating the database ...",
        "[1/3] migrating the database ... done in 2.5 s",
        "[2/3] importing the demo data: skipped, loaded on an earlier start",
        "[3/3] simulating 3 days of traffic ...",
        "[3/3] simulating 3 days of traffic ... done in 2 min 5 s",
        "started in 2 min 8 s",
        "queued for the Celery workers (each runs its queue one task at a time, in the background):",
        "  - generated copy for the first 5 demo campaigns",
        "Follow them at /admin/adengine/generationrequest/",
    ]


def test_a_failing_step_says_so_with_its_time_and_the_error_goes_on():
    out, clock = io.StringIO(), Clock()
    steps = Steps(2, out=out, clock=clock)
    with pytest.raises(RuntimeError, match="migrate failed"):
        with steps.step("migrating the database"):
            clock.now += 12.4
            raise RuntimeError("migrate failed")
    assert out.getvalue().splitlines()[-1] == "[1/2] migrating the database ... failed after 12 s"


def test_nothing_handed_to_the_worker_prints_no_worker_section():
    out = io.StringIO()
    Steps(0, out=out, clock=Clock()).summary("follow")
    assert out.getvalue() == "started in 0.0 s\n"


def test_durations():
    assert (took(0.04), took(9.96), took(12.4), took(59.6), took(61), took(3599)) == (
        "0.0 s", "10.0 s", "12 s", "60 s", "1 min 1 s", "59 min 59 s",
    )  # fmt: skip


def test_the_launcher_numbers_as_many_steps_as_it_takes():
    """Each start passes every step once, done or skipped: as many as STEPS says."""
    import ast
    import inspect

    from shop import launcher

    source = ast.parse(inspect.getsource(launcher))
    timed = [
        n for n in ast.walk(source)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "step"
    ]  # fmt: skip
    assert len(timed) == launcher.STEPS


def _child(code: str) -> subprocess.Popen:
    """A child running ``code`` once it has said it is ready (its signal handling set up)."""
    child = subprocess.Popen([sys.executable, "-c", code + "\nprint('ready', flush=True)\ntime.sleep(60)"],
                             stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert child.stdout.readline().strip() == "ready"
    return child


def test_stopping_the_demo_ends_every_child_and_a_stubborn_one_after_the_grace():
    from shop.launcher import stop_children

    # given a child that stops on SIGTERM and one that ignores it (a worker finishing a task)
    polite = _child("import time")
    stubborn = _child("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN)")
    out = io.StringIO()
    started = time.monotonic()
    # when the demo stops them with a short grace
    stop_children([polite, stubborn], grace=1.5, out=out)
    # then both are gone, the stubborn one killed once the grace ran out, and the wait was announced
    assert polite.poll() is not None and stubborn.poll() is not None
    assert 1.0 <= time.monotonic() - started < 10
    assert "Ctrl-C again stops them at once" in out.getvalue()


def test_a_second_ctrl_c_while_stopping_kills_the_children_at_once(monkeypatch):
    from shop.launcher import stop_children

    # given a worker that ignores SIGTERM, and Ctrl-C pressed while the demo waits for it
    stubborn = _child("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN)")
    wait = subprocess.Popen.wait

    def interrupted(self, timeout=None):
        if timeout is not None:
            raise KeyboardInterrupt
        return wait(self, timeout)

    monkeypatch.setattr(subprocess.Popen, "wait", interrupted)
    started = time.monotonic()
    # when the demo stops (with a long grace), then the second Ctrl-C kills it without waiting, and no
    # KeyboardInterrupt escapes (the services are stopped next)
    stop_children([stubborn], grace=60, out=io.StringIO())
    assert stubborn.poll() is not None and time.monotonic() - started < 10
