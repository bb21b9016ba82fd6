"""What a start of the demo queues for the workers: only the upkeep that may be stale, never a training of the
interest model that a first start has just done (it refitted the same data for a minute to keep the live model)."""

from __future__ import annotations

import pytest

from adengine import tasks
from adengine.models import InterestModel
from shop.launcher import ENQUEUE_UPKEEP

pytestmark = pytest.mark.django_db

UPKEEP = ["adengine.embed_products", "adengine.refresh_interests"]


@pytest.fixture
def sent(monkeypatch) -> list[str]:
    """The tasks the launcher's snippet sends, by name (recorded, not sent)."""
    names: list[str] = []
    for task in (tasks.embed_products, tasks.refresh_interests, tasks.train_interest_model):
        monkeypatch.setattr(task, "apply_async", lambda *a, _name=task.name, **kw: names.append(_name))
    return names


def test_a_start_with_a_live_interest_model_leaves_its_training_to_beat(sent, capsys):
    # given the live model a first start trained in the foreground (or beat on its schedule)
    InterestModel.objects.create(version="im-live", is_active=True)
    # when the start queues its upkeep
    exec(ENQUEUE_UPKEEP, {})
    # then only the products and interest vectors that changed are refreshed (cheap when nothing did)
    assert sent == UPKEEP
    assert "train_interest_model" not in capsys.readouterr().out


def test_a_start_without_a_live_interest_model_queues_its_training(sent, capsys):
    # given a database where none is live (its first training found no behaviour, or it was loaded elsewhere)
    InterestModel.objects.create(version="im-not-switched", is_active=False)
    # when the start queues its upkeep, then the training is queued too, and the launcher is told
    exec(ENQUEUE_UPKEEP, {})
    assert sent == [*UPKEEP, "adengine.train_interest_model"]
    assert "queued: train_interest_model" in capsys.readouterr().out
