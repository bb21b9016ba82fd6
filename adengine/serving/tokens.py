"""Signed, salted, expiring tokens for an impression's view, click and "Why this ad?" URLs.

One token per impression names it by its one-time nonce (signed with Django's signing, salted for
adengine, timestamped); each URL checks it against its own lifetime (views 1 h, clicks 1 day, "Why this
ad?" 30 days by default). The three URLs sit side by side in the same page, so separate signatures per
purpose would protect nothing, and a decision signs once instead of three times.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.core import signing

from adengine.conf import settings as ad_settings

SALT = "adengine.impression"
KINDS = ("view", "click", "why")


class TokenError(ValueError):
    """A tracking token that cannot be honoured; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class TokenData:
    nonce: uuid.UUID


def make(*, nonce: uuid.UUID) -> str:
    """A signed, timestamped token naming one impression by its one-time nonce."""
    return signing.dumps(nonce.hex, salt=SALT, compress=False)


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
        raise TokenError("this link has expired", 410) from None
    except signing.BadSignature:
        raise TokenError("this link is not valid", 400) from None
    try:
        return TokenData(uuid.UUID(hex=value))
    except (TypeError, ValueError, AttributeError):
        raise TokenError("this link is not valid", 400) from None


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


def urls(nonce: uuid.UUID) -> dict[str, str]:
    """The signed view, click and "Why this ad?" paths of one impression."""
    token = make(nonce=nonce)
    return {f"{kind}_url": f"{head}{token}{tail}" for kind, (head, tail) in _path_parts().items()}
