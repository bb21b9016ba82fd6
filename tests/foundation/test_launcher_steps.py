"""The demo's start-up steps: numbered, each with the time it took as measured, and the worker's share named."""

from __future__ import annotations

import io

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
