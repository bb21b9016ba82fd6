"""The impression row, typed: what a decision logs of each ad it shows, and the part of it signed into its URLs."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass, field, fields

from adengine.models import Impression

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def to_micros(when: dt.datetime | None) -> int | None:
    """A time as whole microseconds since the epoch (exact, and short in a token)."""
    return None if when is None else (when - _EPOCH) // dt.timedelta(microseconds=1)


def from_micros(value: int | None) -> dt.datetime | None:
    return None if value is None else _EPOCH + dt.timedelta(microseconds=int(value))


PENDING = float("nan")  # a propensity not known (yet): what off-policy evaluation leaves out


@dataclass(slots=True)
class ImpressionRow:
    """One served ad, as the impression log writes it (the columns of ``adengine.Impression``)."""

    nonce: uuid.UUID
    decision_id: uuid.UUID
    placement_id: int
    campaign_id: int
    creative_id: int | None
    description_id: int | None
    product_id: object | None
    shopper_id: int | None
    language: str
    position: int
    propensity: float  # NaN (PENDING): not known yet -- filled from the slate's candidate set by ``propensity``
    # (off the request path), or never when the row was restored from a token
    predicted_ctr: float
    relevance: float
    value: float
    candidates: int
    personalised: bool
    policy: str
    context: dict = field(default_factory=dict)
    landing_url: str = "/"
    served_at: dt.datetime | None = None

    # what a token signs, so a click that arrives before the row is written can be honoured from it; served_at
    # (microseconds since the epoch) also names the log's partition, so a token's impression is found in its day
    SIGNED = (
        "placement_id", "campaign_id", "creative_id", "description_id", "product_id", "shopper_id", "language",
        "position", "served_at",
    )  # fmt: skip

    def signed(self) -> tuple:
        return tuple(to_micros(self.served_at) if name == "served_at" else getattr(self, name) for name in self.SIGNED)

    def values(self) -> list:
        """The column values in ``COLUMNS`` order (context as JSON text)."""
        return [json.dumps(self.context) if name == "context" else getattr(self, name) for name in COLUMNS]


COLUMNS = tuple(f.name for f in fields(ImpressionRow))
_VALUES = "(" + ", ".join("%s::jsonb" if c == "context" else "%s" for c in COLUMNS) + ")"


def insert_sql(n: int, *, complete_restored: bool = True) -> str:
    """INSERT of ``n`` rows. ``complete_restored``: a row restored from its token earlier (propensity NaN) is
    completed by the real one, and the ids of the rows written are returned; otherwise an existing row is left as
    it is."""
    table = Impression._meta.db_table
    sql = f"INSERT INTO {table} ({', '.join(COLUMNS)}) VALUES " + ", ".join([_VALUES] * n)
    # the nonce is unique with served_at (the partition key): a restored row carries its impression's served_at
    if not complete_restored:
        return sql + " ON CONFLICT (nonce, served_at) DO NOTHING"
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in COLUMNS if c not in ("nonce", "served_at"))
    return (
        sql + f" ON CONFLICT (nonce, served_at) DO UPDATE SET {updates} WHERE {table}.propensity = 'NaN' "
        f"RETURNING {table}.id"
    )
