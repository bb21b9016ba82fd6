"""adengine's periodic tasks reach a real Celery beat (they never did: beat read its schedule first)."""

from __future__ import annotations

from celery.beat import Service

from adengine.signal_handlers import add_beat_schedule
from adengine.tasks import beat_schedule


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


def test_a_real_beat_and_a_plain_worker_run_the_strategy_update(transactional_db, tmp_path, celery_process):
    """A real `celery beat` sends adengine's strategy update when due, and a real worker started as a host
    would start it -- `celery worker`, no -Q -- takes it from adengine's strategy queue and runs it."""
    from adengine.models import StrategyState

    settings = "tests.scheduling.beat_settings"  # periodic tasks due every second
    worker = celery_process("worker", "--loglevel", "INFO", "--pool", "solo", settings=settings)
    beat = celery_process(
        "beat", "--loglevel", "INFO", "--max-interval", "1", "--schedule", str(tmp_path / "schedule"), settings=settings
    )
    beat.wait_for_line(r"Sending due task adengine\.update_strategy", timeout=90)
    log = worker.wait_for_line(r"Task adengine\.update_strategy\[[0-9a-f-]+\] succeeded", timeout=90)
    assert "adengine.strategy" in log  # the queue it consumed, though nobody named it
    assert StrategyState.objects.exists()  # the update ran against the database and recorded its watermark
