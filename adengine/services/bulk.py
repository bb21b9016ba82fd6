"""Bulk writes that record in bulk: inside ``bulk_writes()`` the per-row signal handlers (an order's purchases, a
product's re-embedding, a campaign's target) stand aside, because the bulk writer records it all itself."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_active: ContextVar[bool] = ContextVar("adengine_bulk_writes", default=False)


@contextmanager
def bulk_writes() -> Iterator[None]:
    """Within this block the order, product and campaign signal handlers do nothing."""
    token = _active.set(True)
    try:
        yield
    finally:
        _active.reset(token)


def in_bulk_writes() -> bool:
    """Whether the current context is inside ``bulk_writes()``."""
    return _active.get()
