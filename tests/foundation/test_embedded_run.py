"""`python -m shop.embedded run -- COMMAND` leaves services that already ran (a demo's) running."""

from __future__ import annotations

import sys

import pytest

from shop import embedded


def test_run_beside_running_services_leaves_them_up(monkeypatch):
    already = embedded.running_services()
    if already != ["postgres", "redis"]:
        pytest.skip("the tests do not run on this checkout's embedded services")
    # a command run through the launcher's helper while the services (here: the tests' own) run
    monkeypatch.delenv("DATABASE_URL")
    monkeypatch.delenv("CELERY_BROKER_URL")
    assert embedded.run([sys.executable, "-c", "import os; assert os.environ['DATABASE_URL']"]) == 0
    # it used them and left them up (it used to stop whatever it had found running, a demo's database included)
    assert embedded.running_services() == ["postgres", "redis"]
