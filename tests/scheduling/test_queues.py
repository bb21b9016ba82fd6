"""adengine's queues and routes in the host's Celery app: a plain worker consumes them, the host's own win."""

from __future__ import annotations

import pytest
from celery import Celery
from django.core.checks import Error, Warning

from adengine import queues
from adengine.checks import check_queues
from adengine.tasks import generate_creatives, train_interest_model, update_strategy
from tests.conftest import adengine_settings


def _app(**conf) -> Celery:
    app = Celery("host", set_as_current=False)
    app.conf.update(broker_url="memory://", **conf)
    return app


def test_a_plain_worker_consumes_the_default_queue_and_adenginess():
    # given a host app with no queues configured, as after `celery worker` with no -Q
    app = _app()
    queues.install(app)
    # then its workers consume its default queue and adengine's three
    consumed = set(app.amqp.queues.consume_from)
    assert consumed == {"celery", "adengine.interactive", "adengine.batch", "adengine.strategy"}


def test_a_worker_with_q_keeps_its_choice():
    app = _app()
    queues.install(app)
    app.amqp.queues.select(["adengine.batch"])  # what `celery worker -Q adengine.batch` does after Django starts
    assert set(app.amqp.queues.consume_from) == {"adengine.batch"}


@pytest.mark.parametrize(
    ("task", "queue"),
    [
        ("adengine.generate_creatives", "adengine.interactive"),
        ("adengine.embed_products", "adengine.batch"),
        ("adengine.train_interest_model", "adengine.batch"),
        ("adengine.update_strategy", "adengine.strategy"),
        ("adengine.sweep_generation_requests", "adengine.strategy"),
        ("adengine.maintain_log_partitions", "adengine.strategy"),
        ("shop.anything_else", "celery"),
    ],
)
def test_tasks_are_routed_to_their_queue(task, queue):
    app = _app()
    queues.install(app)
    assert app.amqp.router.route({}, task)["queue"].name == queue


def test_the_hosts_routes_and_visibility_timeout_win():
    # given a host that routes adengine's copy requests itself and sets its own visibility timeout
    app = _app(
        task_routes={"adengine.generate_creatives": {"queue": "copy"}},
        broker_transport_options={"visibility_timeout": 7200},
    )
    queues.install(app)
    queues.install(app)  # twice is harmless
    assert app.amqp.router.route({}, "adengine.generate_creatives")["queue"].name == "copy"
    assert app.amqp.router.route({}, "adengine.update_strategy")["queue"].name == "adengine.strategy"
    assert app.conf.broker_transport_options["visibility_timeout"] == 7200
    assert app.conf.task_routes.count(queues.route) == 1


def test_routes_follow_the_settings_and_none_means_the_default_queue():
    app = _app()
    queues.install(app)
    with adengine_settings(QUEUES={"interactive": "copy-now", "strategy": None}):
        assert app.amqp.router.route({}, "adengine.generate_creatives")["queue"].name == "copy-now"
        assert app.amqp.router.route({}, "adengine.update_strategy")["queue"].name == "celery"


def test_tasks_are_late_acknowledged_redelivered_when_their_worker_dies_and_time_limited():
    app = _app()
    queues.install(app)
    for task in (generate_creatives, update_strategy, train_interest_model):
        assert task.acks_late and task.reject_on_worker_lost
    assert generate_creatives.time_limit == 900 and generate_creatives.soft_time_limit == 810
    assert train_interest_model.time_limit == 3000
    # the visibility timeout is longer than the longest task, so a running task is never handed out twice
    assert app.conf.broker_transport_options["visibility_timeout"] == 3000 + queues.VISIBILITY_MARGIN_SECONDS


def test_checks_name_a_bad_route_and_a_short_visibility_timeout():
    with adengine_settings(ROUTES={"adengine.update_strategy": "nightly"}):
        errors = check_queues(None)
    assert [e.id for e in errors] == ["adengine.E010"] and isinstance(errors[0], Error)
    assert "'nightly' is not a key of QUEUES" in errors[0].msg
    from shop.celery import app

    saved = app.conf.broker_transport_options
    app.conf.broker_transport_options = {**saved, "visibility_timeout": 60}
    try:
        warnings = check_queues(None)
    finally:
        app.conf.broker_transport_options = saved
    assert [w.id for w in warnings] == ["adengine.W010"] and isinstance(warnings[0], Warning)
    assert check_queues(None) == []


def test_a_worker_process_loads_models_without_progress_bars():
    # Celery turns a worker's stderr into log records: each redraw of a bar would be a WARNING line
    from celery.signals import worker_process_init
    from transformers.utils import logging as transformers_logging

    queues.install(_app())
    transformers_logging.enable_progress_bar()
    try:
        worker_process_init.send(sender=None)
        assert not transformers_logging.is_progress_bar_enabled()
    finally:
        transformers_logging.enable_progress_bar()


def test_the_gguf_conversion_bar_is_off_unless_stderr_is_a_terminal(capsys):
    # transformers draws that bar with tqdm itself: it is switched off around the conversion, then put back
    from transformers import modeling_gguf_pytorch_utils as gguf_utils

    from adengine.ml.copywriter import _no_bar_unless_terminal

    original = gguf_utils.tqdm
    with _no_bar_unless_terminal():  # pytest's captured stderr is no terminal, as a worker's log is not
        bar = gguf_utils.tqdm(range(3), desc="Converting")
        assert bar.disable
        list(bar)
    assert gguf_utils.tqdm is original
    assert "Converting" not in capsys.readouterr().err


@pytest.fixture
def sent(monkeypatch):
    """The messages enqueue_after_commit sends, as (task, kwargs), instead of publishing them."""
    out: list[tuple[str, dict]] = []
    monkeypatch.setattr(queues, "_send", lambda name, kwargs, countdown: out.append((name, kwargs)))
    return out


@pytest.mark.django_db(transaction=True)
def test_saves_in_one_transaction_send_one_merged_task(sent):
    from django.db import transaction

    from tests.factories import ProductFactory

    with transaction.atomic():
        products = [ProductFactory(title_en=f"Board {i}") for i in range(3)]
        products[0].save()  # saved twice: named once
        assert sent == []  # nothing before the commit
    assert sent == [("adengine.embed_products", {"product_ids": [str(p.pk) for p in products]})]
    sent.clear()
    products[1].save()  # outside a transaction: at once, alone
    products[2].save()
    assert sent == [("adengine.embed_products", {"product_ids": [str(products[1].pk)]})] + [
        ("adengine.embed_products", {"product_ids": [str(products[2].pk)]})
    ]


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_savepoint_or_transaction_loses_no_later_id(sent):
    from django.db import transaction

    from tests.factories import ProductFactory

    a, b, c = ProductFactory(), ProductFactory(), ProductFactory()
    sent.clear()
    with transaction.atomic():
        try:
            with transaction.atomic():  # the merged send is registered in a savepoint that rolls back
                a.save()
                raise RuntimeError
        except RuntimeError:
            pass
        b.save()  # registers anew: not merged into the discarded send
        c.save()
    assert sent == [("adengine.embed_products", {"product_ids": [str(b.pk), str(c.pk)]})]
    sent.clear()
    try:
        with transaction.atomic():
            a.save()
            raise RuntimeError
    except RuntimeError:
        pass
    assert sent == []  # the rolled-back save sends nothing
    with transaction.atomic():
        b.save()
    assert sent == [("adengine.embed_products", {"product_ids": [str(b.pk)]})]


@pytest.mark.django_db(transaction=True)
def test_calls_with_other_arguments_are_not_merged(sent):
    from django.db import transaction

    with transaction.atomic():
        queues.enqueue_after_commit(
            "adengine.refresh_campaign_targets", kwargs={"campaign_ids": [1]}, merge="campaign_ids"
        )
        queues.enqueue_after_commit(
            "adengine.refresh_campaign_targets", kwargs={"campaign_ids": [2]}, merge="campaign_ids"
        )
        queues.enqueue_after_commit("adengine.embed_products", kwargs={"product_ids": ["1"]}, merge="product_ids")
        queues.enqueue_after_commit(
            "adengine.refresh_campaign_targets", kwargs={"campaign_ids": [3]}, merge="campaign_ids", countdown=5
        )
    assert sent == [
        ("adengine.refresh_campaign_targets", {"campaign_ids": [1, 2]}),
        ("adengine.embed_products", {"product_ids": ["1"]}),
        ("adengine.refresh_campaign_targets", {"campaign_ids": [3]}),
    ]
