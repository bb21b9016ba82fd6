"""Who the shopper is: registered user or anonymous session; consent; erasure."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Collection
from typing import Any

from django.db import IntegrityError, transaction

from adengine.conf import settings as ad_settings
from adengine.models import BehaviourEvent, Shopper

log = logging.getLogger(__name__)

SESSION_KEY = "adengine_shopper"


class _RecentShoppers:
    """Per process: shoppers looked up in the last SHOPPER_CACHE_SECONDS, so that the page views and ad
    requests of one visit read the shopper row once. Consent changes and erasure here drop the entry at
    once; changes made elsewhere (another process, the interest refresh) show within the TTL."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: dict[tuple, tuple[float, Shopper]] = {}

    def get(self, key: tuple) -> Shopper | None:
        ttl = float(ad_settings.SHOPPER_CACHE_SECONDS)
        if ttl <= 0:
            return None
        with self.lock:
            entry = self.entries.get(key)
        if entry is None or time.monotonic() - entry[0] > ttl:
            return None
        return entry[1]

    def put(self, key: tuple, shopper: Shopper) -> None:
        if float(ad_settings.SHOPPER_CACHE_SECONDS) <= 0:
            return
        with self.lock:
            if len(self.entries) > 50_000:
                self.entries.clear()
            self.entries[key] = (time.monotonic(), shopper)

    def forget(self, shopper: Shopper) -> None:
        with self.lock:
            self.entries.pop(("user", shopper.user_id), None)
            self.entries.pop(("anonymous", shopper.anonymous_key), None)

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()


recent_shoppers = _RecentShoppers()


def get_or_create_for_user(*, user: Any) -> Shopper:
    """The shopper of a registered user, created on first use."""
    key = ("user", user.pk)
    shopper = recent_shoppers.get(key) or Shopper.objects.filter(user=user).first()
    if shopper is None:
        try:
            with transaction.atomic():
                shopper = Shopper.objects.create(user=user)
        except IntegrityError:  # created concurrently
            shopper = Shopper.objects.get(user=user)
    recent_shoppers.put(key, shopper)
    return shopper


def shoppers_for_users(*, user_ids: Collection[Any]) -> dict[Any, Shopper]:
    """The shoppers of many registered users by user pk, the missing ones created in one insert (bulk imports)."""
    wanted = set(user_ids)
    found = {s.user_id: s for s in Shopper.objects.filter(user_id__in=wanted)}
    missing = wanted - set(found)
    if missing:  # ignore_conflicts: a shopper created concurrently is simply read back
        Shopper.objects.bulk_create([Shopper(user_id=pk) for pk in missing], ignore_conflicts=True)
        found |= {s.user_id: s for s in Shopper.objects.filter(user_id__in=missing)}
    return found


def get_or_create_anonymous(*, anonymous_key: str) -> Shopper:
    """The shopper of an anonymous visitor, by the key kept in their session."""
    key = ("anonymous", anonymous_key)
    shopper = recent_shoppers.get(key)
    if shopper is None:
        shopper, _ = Shopper.objects.get_or_create(anonymous_key=anonymous_key)
        recent_shoppers.put(key, shopper)
    return shopper


_REQUEST_CACHE = "_adengine_shopper"


def shopper_for_request(request: Any, *, create: bool = True) -> Shopper | None:
    """The shopper behind a request: its user, or the anonymous key in its session (looked up once per request)."""
    cached = getattr(request, _REQUEST_CACHE, None)
    if cached is not None:
        return cached
    shopper = _shopper_for_request(request, create=create)
    if shopper is not None:
        try:
            setattr(request, _REQUEST_CACHE, shopper)
        except AttributeError:  # an object that takes no attributes: no caching
            pass
    return shopper


def _shopper_for_request(request: Any, *, create: bool) -> Shopper | None:
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return get_or_create_for_user(user=user) if create else Shopper.objects.filter(user=user).first()
    session = getattr(request, "session", None)
    if session is None:
        return None
    key = session.get(SESSION_KEY)
    if not key:
        if not create:
            return None
        key = uuid.uuid4().hex
        session[SESSION_KEY] = key  # marks the session modified, so the cookie is set
    return get_or_create_anonymous(anonymous_key=key) if create else Shopper.objects.filter(anonymous_key=key).first()


@transaction.atomic
def merge_anonymous_into_user(*, anonymous_key: str, user: Any) -> int:
    """On login: move an anonymous session's behaviour to the user's shopper; returns events moved."""
    anon = Shopper.objects.select_for_update().filter(anonymous_key=anonymous_key).first()
    if anon is None:
        return 0
    target = get_or_create_for_user(user=user)
    moved = BehaviourEvent.objects.filter(shopper=anon).update(shopper=target)
    if anon.last_event_at and (target.last_event_at is None or anon.last_event_at > target.last_event_at):
        target.last_event_at = anon.last_event_at
    recent_shoppers.forget(anon)
    if not anon.personalisation:  # an opt-out made before logging in is kept
        target.personalisation = False
    target.save(update_fields=["last_event_at", "personalisation"])
    anon.delete()
    return moved


@transaction.atomic
def set_personalisation(*, shopper: Shopper, allowed: bool) -> Shopper:
    """Grant or withdraw consent; withdrawing drops the interest vector and browsing history."""
    recent_shoppers.forget(shopper)
    shopper.personalisation = allowed
    fields = ["personalisation"]
    if not allowed:
        BehaviourEvent.objects.filter(shopper=shopper).exclude(kind=BehaviourEvent.Kind.PURCHASE).delete()
        shopper.interest_vector = None
        shopper.interest_source_at = None
        shopper.interest_model = ""
        shopper.interest_events = 0
        shopper.interest_hybrid = None
        shopper.interest_hybrid_model = ""
        fields += [
            "interest_vector",
            "interest_source_at",
            "interest_model",
            "interest_events",
            "interest_hybrid",
            "interest_hybrid_model",
        ]
    shopper.save(update_fields=fields)
    return shopper


@transaction.atomic
def erase_shopper(*, shopper: Shopper) -> dict[str, int]:
    """Delete a shopper's behaviour and vectors (the right to erasure); returns what was deleted."""
    events = BehaviourEvent.objects.filter(shopper=shopper).count()
    recent_shoppers.forget(shopper)
    shopper.delete()  # cascades to events
    log.info("erased shopper %s with %d events", shopper.pk, events)
    return {"shoppers": 1, "events": events}
