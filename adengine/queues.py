"""adengine's Celery plumbing: its queues and routes in the host's app, task semantics, bounded publishing.

adengine never owns the Celery app; ``install`` (called from ``AdengineConfig.ready``, before a worker selects
its queues and before beat builds its schedule) adds to the host's app what adengine needs, and the host's own
configuration wins wherever both name the same thing:

- its three queues (``ADENGINE["QUEUES"]``), declared so that a plain ``celery worker`` consumes them too;
- a router (``route``), appended after the host's ``task_routes``, that sends each task to its queue;
- its periodic tasks into ``beat_schedule``;
- a Redis ``visibility_timeout`` longer than its longest task, unless the host set one;
- in its worker processes, no model loading progress bars (``quiet_model_loading``).
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task
from django.db import transaction
from kombu.exceptions import OperationalError

from adengine.conf import settings as ad_settings

log = logging.getLogger(__name__)
VISIBILITY_MARGIN_SECONDS = 600  # a redelivery must never overtake a task still running within its time limit


class QueueUnavailable(RuntimeError):
    """The broker could not be reached within PUBLISH_RETRY_POLICY; the message says why."""


def queue_for(task_name: str) -> str | None:
    """The queue name adengine routes ``task_name`` to (None: the app's default queue, or not adengine's)."""
    kind = ad_settings.ROUTES.get(task_name)
    return ad_settings.QUEUES.get(kind) if kind else None


def time_limit(task_name: str) -> int | None:
    """Hard time limit (seconds) of an adengine task: that of the kind of queue it is routed to."""
    kind = ad_settings.ROUTES.get(task_name)
    limit = ad_settings.TASK_TIME_LIMITS.get(kind) if kind else None
    return int(limit) if limit else None


def longest_time_limit() -> int:
    """The longest hard time limit of any adengine task."""
    return max((int(v) for v in ad_settings.TASK_TIME_LIMITS.values() if v), default=0)


def route(name: str, args: Any, kwargs: Any, options: dict, task: Any = None, **kw: Any) -> dict | None:
    """Celery router: adengine's tasks to their queues (read from ADENGINE at each call, so overrides apply)."""
    queue = queue_for(name)
    return {"queue": queue} if queue else None


class AdengineTask(Task):
    """adengine's tasks are idempotent, so a message is acknowledged only when its task has run.

    ``acks_late``: a worker that dies mid-task leaves the message to the broker, which hands it out again (at once
    when a pool process is killed -- ``reject_on_worker_lost`` --, after the visibility timeout when the whole
    worker is). Time limits come from ``TASK_TIME_LIMITS`` by the task's queue.
    """

    abstract = True
    acks_late = True
    reject_on_worker_lost = True

    @property
    def time_limit(self) -> int | None:  # type: ignore[override]
        return time_limit(self.name)

    @property
    def soft_time_limit(self) -> int | None:  # type: ignore[override]
        limit = time_limit(self.name)
        return max(1, int(limit * 0.9)) if limit else None


def publish(task: Task, *, kwargs: dict) -> str:
    """Send ``task`` now, retrying within PUBLISH_RETRY_POLICY only; returns the task id or raises QueueUnavailable."""
    try:
        return task.apply_async(kwargs=kwargs, retry=True, retry_policy=dict(ad_settings.PUBLISH_RETRY_POLICY)).id
    except (OperationalError, OSError) as exc:
        # the broker's address stays in the log: the reason goes to API clients too
        log.warning("could not send %s to the broker: %s", task.name, exc)
        raise QueueUnavailable(f"the task queue (Celery broker) is unreachable ({type(exc).__name__})") from exc


def enqueue_after_commit(
    task_name: str, *, kwargs: dict | None = None, countdown: float | None = None, merge: str | None = None
) -> None:
    """Send an adengine task once the current transaction commits (at once outside one), never raising: with the
    broker down the work is logged and left to beat's next periodic run. For background upkeep only -- a
    request the caller must hear about goes through ``publish``.

    ``merge`` names a list argument (``"product_ids"``): inside one transaction, the calls for the same task and
    the same other arguments send one message, their lists joined without repeats (a campaign saved with its
    products and placements, a loop saving products in one transaction: one task, not one per save).
    """
    kwargs = dict(kwargs or {})
    connection = transaction.get_connection()
    if merge and connection.in_atomic_block:
        key = (task_name, merge, countdown, repr(sorted((k, v) for k, v in kwargs.items() if k != merge)))
        pending = connection.__dict__.setdefault("_adengine_merged_tasks", {})
        entry = pending.get(key)
        if entry is not None and _registered(connection, entry[0], entry[2]):
            entry[1].update(dict.fromkeys(kwargs[merge]))  # an ordered set: a loop of saves stays linear
            return
        values = dict.fromkeys(kwargs[merge])

        def send_merged() -> None:
            if pending.get(key, (None,))[0] is send_merged:
                del pending[key]
            _send(task_name, {**kwargs, merge: list(values)}, countdown)

        pending[key] = (send_merged, values, len(getattr(connection, "run_on_commit", ())))
        transaction.on_commit(send_merged)
        return
    transaction.on_commit(lambda: _send(task_name, kwargs, countdown))


def _registered(connection: Any, func: Any, index: int) -> bool:
    """Whether ``func``, registered at ``index`` of the connection's on-commit list, still waits for this
    transaction's commit (a rolled-back savepoint or transaction discards what it registered, and may move what
    it keeps: then the next call registers anew -- an extra message at worst, never a lost one). One look, not a
    scan: a loop of saves in one transaction may register thousands of other callbacks."""
    try:
        return connection.run_on_commit[index][1] is func
    except (AttributeError, IndexError, TypeError, KeyError):  # Django's bookkeeping changed: register anew
        return False


def _send(task_name: str, kwargs: dict, countdown: float | None) -> None:
    from adengine import tasks

    try:
        task = getattr(tasks, task_name.removeprefix("adengine."))
        task.apply_async(kwargs=kwargs, countdown=countdown, retry=False)
    except Exception:
        log.warning("could not enqueue %s%s; beat will catch up", task_name, f" {kwargs}" if kwargs else "",
                    exc_info=True)  # fmt: skip


def _install_queues(app: Any) -> list[str]:
    """Declare adengine's queues in the app; a worker started without -Q consumes them with the default queue."""
    queues = app.amqp.queues
    added = []
    for name in dict.fromkeys(q for q in ad_settings.QUEUES.values() if q):
        if name not in queues:
            # select_add: consumed by a worker that selects no queues (plain `celery worker`); a worker that
            # selects with -Q does so after this (Django, hence this hook, starts first) and keeps its choice
            queues.select_add(queues.new_missing(name))
            added.append(name)
    return added


def _install_routes(app: Any) -> None:
    routes = app.conf.task_routes
    if routes is None:
        routes = ()
    elif not isinstance(routes, list | tuple):
        routes = (routes,)
    if route in routes or "adengine.queues.route" in routes:
        return
    app.conf.task_routes = (*routes, route)  # last: the host's routers are asked first
    app.amqp.flush_routes()
    app.amqp.router = app.amqp.Router()


def _install_visibility_timeout(app: Any) -> None:
    options = dict(app.conf.broker_transport_options or {})
    if "visibility_timeout" not in options:
        options["visibility_timeout"] = longest_time_limit() + VISIBILITY_MARGIN_SECONDS
        app.conf.broker_transport_options = options


def merge_beat_schedule(app: Any) -> dict:
    """Add adengine's periodic tasks to ``app.conf.beat_schedule`` (the host's own entries win); returns those added."""
    from adengine.tasks import beat_schedule

    schedule = app.conf.beat_schedule
    added = {key: entry for key, entry in beat_schedule().items() if key not in schedule}
    schedule.update(added)
    return added


def quiet_model_loading(**kwargs: Any) -> None:
    """In a worker, transformers' progress bars (loading weights, converting a model) are off: Celery turns the
    worker's stderr into log records, so each redraw of a bar would be a WARNING line in the worker's log."""
    try:
        from transformers.utils import logging as transformers_logging
    except ImportError:  # pragma: no cover - transformers is a dependency; nothing to quieten without it
        return
    transformers_logging.disable_progress_bar()


def install(app: Any) -> None:
    """Give the host's Celery app adengine's queues, routes, periodic tasks and visibility timeout."""
    from celery.signals import worker_init, worker_process_init

    _install_queues(app)
    _install_routes(app)
    _install_visibility_timeout(app)
    merge_beat_schedule(app)
    for started in (worker_init, worker_process_init):  # the worker (a solo pool), and each of its pool processes
        started.connect(quiet_model_loading, weak=False, dispatch_uid="adengine-quiet-model-loading")
