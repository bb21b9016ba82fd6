"""Signed, salted, expiring tokens for an impression's view, click and "Why this ad?" URLs.

One token per impression names it by its one-time nonce (signed with Django's signing, salted for
adengine, timestamped); each URL checks it against its own lifetime (views 1 h, clicks 1 day, "Why this
ad?" 30 days by default). The three URLs sit side by side in the same page, so separate signatures per
purpose would protect nothing, and a decision signs once instead of three times.

The token also carries, signed, the impression's key fields (placement, campaign, headline, description,
product, shopper, language, position; ``ROW_FIELDS``): a click or view that arrives before its impression
row is written (another process's writer still waiting for the database, say) is honoured from them
(``adengine.services.tracking``). Nothing else in the request is trusted.

Signed is not secret: anyone can base64-decode a token. The shopper's id is therefore carried masked
(``_mask``: XOR with a pad derived from SECRET_KEY and the impression's one-time nonce), so a URL that ends
up in a proxy's log, an analytics tool or a shared link does not name the shopper, nor link their ads to one
another. The ads' own ids are not masked: they are what the page shows anyway.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from django.core import signing
from django.utils.encoding import force_bytes
from django.utils.translation import gettext_noop

from adengine.conf import settings as ad_settings

from .rows import ImpressionRow, from_micros

SALT = "adengine.impression"
KINDS = ("view", "click", "why")


class TokenError(ValueError):
    """A tracking token that cannot be honoured; ``status`` is the HTTP status to answer with.

    The message is English (the API says it as is); the storefront shows its translation (marked with
    ``gettext_noop`` where it is raised).
    """

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


ROW_FIELDS = ImpressionRow.SIGNED


@dataclass(frozen=True)
class TokenData:
    nonce: uuid.UUID
    row: dict | None = None  # the signed ROW_FIELDS (None: a token of an older version, the nonce alone)
    issued_at: dt.datetime | None = None

    @property
    def served_at(self) -> dt.datetime | None:
        """When its impression was served, exactly (its partition of the log); None in older tokens."""
        return from_micros((self.row or {}).get("served_at"))


_mac: tuple[str, object] | None = None


def _signed(obj) -> str:
    """``signing.dumps(obj, salt=SALT, compress=False)``, the same string, with the HMAC key derived once per
    SECRET_KEY instead of once per token (a decision signs a token per ad)."""
    global _mac
    from django.conf import settings

    secret = settings.SECRET_KEY
    cached = _mac
    if cached is None or cached[0] != secret:  # Django's salted_hmac(SALT + "signer", value, SECRET_KEY)
        key = hashlib.sha256(force_bytes(SALT + "signer") + force_bytes(secret)).digest()
        cached = _mac = (secret, hmac.new(key, digestmod=hashlib.sha256))
    value = f"{signing.b64_encode(json.dumps(obj, separators=(',', ':')).encode('latin-1')).decode()}:"
    value += signing.b62_encode(int(time.time()))
    mac = cached[1].copy()
    mac.update(value.encode())
    return f"{value}:{signing.b64_encode(mac.digest()).decode()}"


_SHOPPER = ROW_FIELDS.index("shopper_id")
_MASKED = "m"  # prefix of a masked shopper id (older tokens carry the number itself)
_pad_key: tuple[str, bytes] | None = None


def _mask(shopper_id: int, nonce: uuid.UUID) -> int:
    """``shopper_id`` XOR a 63-bit pad from HMAC(SECRET_KEY-derived key, nonce): its own inverse. Each impression's
    nonce is new, so the same shopper's tokens share nothing."""
    global _pad_key
    from django.conf import settings

    secret = settings.SECRET_KEY
    if _pad_key is None or _pad_key[0] != secret:
        _pad_key = (secret, hashlib.sha256(force_bytes(SALT + "shopper") + force_bytes(secret)).digest())
    pad = int.from_bytes(hmac.new(_pad_key[1], nonce.bytes, hashlib.sha256).digest()[:8], "big") >> 1
    return shopper_id ^ pad


def make(*, nonce: uuid.UUID, row: Sequence | None = None) -> str:
    """A signed, timestamped token naming one impression by its one-time nonce (and carrying its ROW_FIELDS, the
    shopper's id masked)."""
    if row is None:
        return _signed(nonce.hex)
    if len(row) != len(ROW_FIELDS):
        raise ValueError(f"row must have {len(ROW_FIELDS)} values: {', '.join(ROW_FIELDS)}")
    values = [v if v is None or isinstance(v, int | str) else str(v) for v in row]  # a UUID product key as text
    shopper = values[_SHOPPER]
    if shopper is not None:
        values[_SHOPPER] = f"{_MASKED}{_mask(int(shopper), nonce):x}"
    return _signed([nonce.hex, *values])


def _unmask(value, nonce: uuid.UUID) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value  # no shopper, or a token signed before shopper ids were masked
    if isinstance(value, str) and value.startswith(_MASKED):
        return _mask(int(value[len(_MASKED) :], 16), nonce)
    raise ValueError(value)


def max_age(kind: str) -> int:
    return int(
        {
            "view": ad_settings.TRACKING_VIEW_MAX_AGE,
            "click": ad_settings.TRACKING_CLICK_MAX_AGE,
            "why": ad_settings.TRACKING_WHY_MAX_AGE,
        }[kind]
    )


def read(kind: str, token: str) -> TokenData:
    """The impression a token names, if still valid for ``kind``; TokenError (400 tampered, 410 expired)."""
    try:
        value = signing.loads(token, salt=SALT, max_age=max_age(kind))
    except signing.SignatureExpired:
        raise TokenError(gettext_noop("this link has expired"), 410) from None
    except signing.BadSignature:
        raise TokenError(gettext_noop("this link is not valid"), 400) from None
    try:
        if isinstance(value, str):
            return TokenData(uuid.UUID(hex=value))
        # a token signed before served_at was among ROW_FIELDS has one field fewer
        if not isinstance(value, list) or len(value) not in (len(ROW_FIELDS), 1 + len(ROW_FIELDS)):
            raise ValueError(value)
        nonce = uuid.UUID(hex=value[0])
        # the timestamp is part of what was signed: when the ad was served
        issued = dt.datetime.fromtimestamp(signing.b62_decode(token.rsplit(":", 2)[-2]), tz=dt.UTC)
        row = dict(zip(ROW_FIELDS, value[1:], strict=False))
        row.setdefault("served_at", None)
        row["shopper_id"] = _unmask(row.get("shopper_id"), nonce)
        return TokenData(nonce, row, issued)
    except (TypeError, ValueError, AttributeError, IndexError):
        raise TokenError(gettext_noop("this link is not valid"), 400) from None


_PLACEHOLDER = "TOKEN"
_paths: dict[tuple, dict[str, tuple[str, str]]] = {}


def _path_parts() -> dict[str, tuple[str, str]]:
    """Each kind's path around its token, reversed once per URLconf and script prefix (not per ad)."""
    from django.conf import settings
    from django.urls import get_script_prefix, get_urlconf, reverse

    key = (get_urlconf() or settings.ROOT_URLCONF, get_script_prefix())
    parts = _paths.get(key)
    if parts is None:
        parts = {}
        for kind in KINDS:
            head, _, tail = reverse(f"adengine:{kind}", args=[_PLACEHOLDER]).rpartition(_PLACEHOLDER)
            parts[kind] = (head, tail)
        _paths[key] = parts
    return parts


def urls(nonce: uuid.UUID, row: Sequence | None = None) -> dict[str, str]:
    """The signed view, click and "Why this ad?" paths of one impression."""
    token = make(nonce=nonce, row=row)
    return {f"{kind}_url": f"{head}{token}{tail}" for kind, (head, tail) in _path_parts().items()}
