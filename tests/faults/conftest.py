"""Fault tests: a broker of their own, real celery processes, a copywriter that holds its answer."""

from tests.processes import broker, celery_process, chat_server  # noqa: F401
