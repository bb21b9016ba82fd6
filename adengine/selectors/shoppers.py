"""Reading shoppers and their behaviour."""

from __future__ import annotations

from django.db import connection
from django.db.models import F, Q, QuerySet

from adengine.models import BehaviourEvent, Shopper


def stale_shoppers(*, tag: str | None = None) -> QuerySet[Shopper]:
    """Consenting shoppers whose behaviour is newer than their interest vector.

    With ``tag`` (encoder version and method), vectors computed by another model count as stale too.
    """
    cond = Q(interest_source_at__isnull=True) | Q(interest_source_at__lt=F("last_event_at"))
    if tag is not None:
        cond |= Q(interest_vector__isnull=False) & ~Q(interest_model=tag)
    return Shopper.objects.filter(personalisation=True, last_event_at__isnull=False).filter(cond)


_RECENT = """
    SELECT {columns} FROM (
        SELECT e.*, row_number() OVER (PARTITION BY e.shopper_id ORDER BY e.occurred_at DESC, e.id DESC) AS rn
        FROM adengine_behaviourevent e WHERE e.shopper_id = ANY(%s)
    ) ranked WHERE rn <= %s ORDER BY shopper_id, occurred_at DESC, id DESC
"""


def recent_event_rows(*, shopper_ids: list[int], limit_per_shopper: int) -> list[tuple]:
    """``recent_events`` as plain ``(shopper_id, kind, product_id, query, occurred_at)`` tuples, grouped by shopper,
    each shopper's newest first: the same rows in one query, without a model instance per event (the refresh reads
    a few thousand events per batch)."""
    with connection.cursor() as cur:
        cur.execute(
            _RECENT.format(columns="shopper_id, kind, product_id, query, occurred_at"),
            [list(shopper_ids), int(limit_per_shopper)],
        )
        return cur.fetchall()


def recent_events(*, shopper_ids: list[int], limit_per_shopper: int) -> dict[int, list[BehaviourEvent]]:
    """The newest ``limit_per_shopper`` events of each shopper, newest first, in one query."""
    rows = BehaviourEvent.objects.raw(_RECENT.format(columns="*"), [list(shopper_ids), int(limit_per_shopper)])
    out: dict[int, list[BehaviourEvent]] = {sid: [] for sid in shopper_ids}
    for event in rows:
        out[event.shopper_id].append(event)
    return out
