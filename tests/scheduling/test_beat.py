"""adengine's periodic tasks reach a real Celery beat (they never did: beat read its schedule first)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from celery.beat import Service

from adengine.signal_handlers import add_beat_schedule
from adengine.tasks import beat_schedule

ROOT = Path(__file__).resolve().parents[2]


def test_the_scheduler_beat_builds_has_adengines_tasks(tmp_path):
    # given the host's Celery app, configured as beat finds it
    from shop.celery import app

    # when beat builds its scheduler (it does so before it sends beat_init)
    service = Service(app=app, schedule_filename=str(tmp_path / "schedule"))
    # then every adengine entry is in it, the interest model's training among them
    assert set(beat_schedule()) <= set(service.scheduler.schedule)
    assert "adengine.train_interest_model" in service.scheduler.schedule


def test_entries_missing_from_a_running_scheduler_are_added_at_beat_init(tmp_path):
    from shop.celery import app

    service = Service(app=app, schedule_filename=str(tmp_path / "schedule"))
    service.scheduler.schedule.pop("adengine.update_strategy")
    add_beat_schedule(service)
    assert "adengine.update_strategy" in service.scheduler.schedule


def test_a_real_beat_sends_the_strategy_update(tmp_path):
    """A real `celery beat` process on the embedded broker sends adengine's tasks when they are due."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.scheduling.beat_settings"}
    cmd = [sys.executable, "-m", "celery", "-A", "shop", "beat", "--loglevel", "INFO", "--max-interval", "1"]
    cmd += ["--schedule", str(tmp_path / "schedule")]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = []
    try:
        deadline = time.monotonic() + 60
        os.set_blocking(proc.stdout.fileno(), False)
        while time.monotonic() < deadline and proc.poll() is None:
            line = proc.stdout.readline()
            if not line:
                time.sleep(0.2)
                continue
            seen.append(line)
            if "Sending due task adengine.update_strategy" in line:
                break
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    assert any("Sending due task adengine.update_strategy" in line for line in seen), "".join(seen[-30:])
