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


def test_the_demo_accounts_keep_their_password_and_sessions_across_starts(monkeypatch, client):
    from django.contrib.auth import get_user_model

    from fixtures.demo_login import demo_login
    from shop import launcher

    user_model = get_user_model()
    shopper = user_model.objects.create(username=demo_login().username)
    shopper.set_unusable_password()  # as the import leaves a customer
    shopper.save()
    monkeypatch.setattr(launcher, "_shell", lambda code, **kw: exec(code, {}))
    # a first start gives both accounts the README's passwords
    launcher._accounts()
    admin = user_model.objects.get(username=launcher.ADMIN_USER)
    assert admin.is_superuser and admin.check_password(launcher.ADMIN_PASSWORD)
    assert user_model.objects.get(pk=shopper.pk).check_password(launcher.SHOPPER_PASSWORD)
    # the admin logs in and changes their password
    admin.set_password("chosen-by-them")
    admin.save()
    client.force_login(admin)
    # a later start neither undoes that nor ends their session (a new hash would)
    launcher._accounts()
    assert user_model.objects.get(pk=admin.pk).check_password("chosen-by-them")
    assert client.get("/admin/").status_code == 200
