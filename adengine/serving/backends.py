"""The seam between adengine and whatever decides which ads to show: ``ADENGINE["DECISION_BACKEND"]``.

The storefront's ad slots, the decision API and the simulation call ``decide()`` here; it asks the configured
backend, one instance per process, which owns its per-process caches (for adengine's own ``Engine``: the
candidate index and today's impressions per shopper). A shop that wants another engine (a remote ad server, a
rules engine) subclasses ``DecisionBackend`` and names it in the setting, as Ethical Ad Server's decision
backends are chosen.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from adengine.conf import settings as ad_settings

if TYPE_CHECKING:
    from .context import PageContext
    from .engine import Decision


class UnknownPlacement(LookupError):
    """No placement has this key."""


class IndexNotReady(RuntimeError):
    """The process's first candidate index is still being built (``SERVING_INDEX_WAIT_SECONDS``): no ads yet."""


class DecisionBackend:
    """Chooses and logs the ads of one placement view."""

    def decide(
        self,
        *,
        placement_key: str,
        shopper: Any,
        context: PageContext | None = None,
        n: int | None = None,
        language: str | None = None,
        product_categories: tuple[str, ...] = (),
    ) -> Decision:
        """The ads for one view of a placement (possibly none); UnknownPlacement for an unknown key."""
        raise NotImplementedError

    def shows_product_as(self, product_pk: Any, *, price: Any, available: bool) -> bool:
        """Whether this process already serves the promoted product with this price and availability (so a save
        of it changes nothing for serving); False when in doubt."""
        return False

    def invalidate(self) -> None:
        """Forget this process's caches: campaigns, assets or placements changed here."""

    def campaigns_changed(self, campaign_ids: Iterable[int]) -> None:
        """These campaigns (or their assets, products, placements) changed here; an empty list: placements,
        experiments or the click model did. A backend that cannot tell forgets everything."""
        self.invalidate()

    def reset(self) -> None:
        """Forget everything cached in this process (tests, a simulated day)."""
        self.invalidate()


@functools.cache
def get_backend() -> DecisionBackend:
    """This process's decision backend (``ADENGINE["DECISION_BACKEND"]``)."""
    path = ad_settings.DECISION_BACKEND
    try:
        cls = import_string(path) if isinstance(path, str) else path
    except ImportError as exc:
        raise ImproperlyConfigured(f"ADENGINE['DECISION_BACKEND'] = {path!r} cannot be imported: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, DecisionBackend)):
        raise ImproperlyConfigured(f"ADENGINE['DECISION_BACKEND'] = {path!r} is not a DecisionBackend subclass")
    return cls()


def decide(**kwargs: Any) -> Decision:
    """The configured backend's decision (keyword arguments of ``DecisionBackend.decide``)."""
    return get_backend().decide(**kwargs)


def _forget_backend(*, setting: str, **kwargs: Any) -> None:
    """A changed DECISION_BACKEND takes effect; the same one keeps its caches."""
    if setting != "ADENGINE" or not get_backend.cache_info().currsize:
        return
    try:
        path = ad_settings.DECISION_BACKEND
    except ImproperlyConfigured:  # a broken ADENGINE (checks report it): decide again when it is used
        get_backend.cache_clear()
        return
    cls = type(get_backend())
    if path is not cls and path != f"{cls.__module__}.{cls.__qualname__}":
        get_backend.cache_clear()


setting_changed.connect(_forget_backend)
