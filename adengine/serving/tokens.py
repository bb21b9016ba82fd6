"""Signed, salted, expiring tokens for impression, click and "Why this ad?" URLs."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.core import signing

from adengine.conf import settings as ad_settings

SALTS = {"view": "adengine.view", "click": "adengine.click", "why": "adengine.why"}


class TokenError(ValueError):
    """A tracking token that cannot be honoured; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class TokenData:
    nonce: uuid.UUID


def make(kind: str, *, nonce: uuid.UUID) -> str:
    """A signed token naming one impression by its one-time nonce, for one purpose."""
    return signing.dumps(nonce.hex, salt=SALTS[kind], compress=False)


def max_age(kind: str) -> int:
    return int(
        {
            "view": ad_settings.TRACKING_VIEW_MAX_AGE,
            "click": ad_settings.TRACKING_CLICK_MAX_AGE,
            "why": ad_settings.TRACKING_WHY_MAX_AGE,
        }[kind]
    )


def read(kind: str, token: str) -> TokenData:
    """The impression a token names; TokenError (400 tampered, 410 expired) otherwise."""
    try:
        value = signing.loads(token, salt=SALTS[kind], max_age=max_age(kind))
    except signing.SignatureExpired:
        raise TokenError("this link has expired", 410) from None
    except signing.BadSignature:
        raise TokenError("this link is not valid", 400) from None
    try:
        return TokenData(uuid.UUID(hex=value))
    except (TypeError, ValueError, AttributeError):
        raise TokenError("this link is not valid", 400) from None


def urls(nonce: uuid.UUID) -> dict[str, str]:
    """The signed view, click and "Why this ad?" paths of one impression."""
    from django.urls import reverse

    return {
        f"{kind}_url": reverse(f"adengine:{kind}", args=[make(kind, nonce=nonce)]) for kind in ("view", "click", "why")
    }
