"""Signal handlers, connected in AdengineConfig.ready() with sender=the host's models."""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import beat_init
from django.contrib.auth.signals import user_logged_in
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save

from adengine.conf import get_order_model, get_product_model
from adengine.queues import merge_beat_schedule
from adengine.services.bulk import in_bulk_writes

log = logging.getLogger(__name__)


def order_saved(sender: type, instance: Any, raw: bool = False, **kwargs: Any) -> None:
    """After an order commits, record its lines as purchases (never breaks the checkout)."""
    if raw or in_bulk_writes():  # loaddata fixtures are not behaviour; imports record in bulk
        return
    order_pk = instance.pk

    def record() -> None:
        from adengine.services.attribution import attribute_order, sync_conversion
        from adengine.services.behaviour import record_order

        try:
            order = sender._default_manager.filter(pk=order_pk).first()
            if order is not None:
                record_order(order=order)  # or withdrawn, when the order no longer counts
                attribute_order(order=order)
                sync_conversion(order=order)  # a cancellation or refund takes the credit back
        except Exception:
            log.exception("adengine could not record order %s as purchases", order_pk)

    transaction.on_commit(record)


def product_saved(sender: type, instance: Any, raw: bool = False, **kwargs: Any) -> None:
    """After a product commits, re-embed it in the worker."""
    if raw or in_bulk_writes():
        return
    from adengine.queues import enqueue_after_commit

    enqueue_after_commit("adengine.embed_products", kwargs={"product_ids": [str(instance.pk)]}, merge="product_ids")


def product_offer_changed(sender: type, instance: Any, raw: bool = False, **kwargs: Any) -> None:
    """A promoted product's price or availability changed: every serving process rebuilds its index (an
    out-of-stock product is never advertised). Saves that change neither (most stock decrements) cost one
    query."""
    if raw or in_bulk_writes():
        return
    try:
        from django.utils import timezone

        from adengine.adapters import get_adapter
        from adengine.models import Campaign
        from adengine.serving import get_backend

        through = Campaign.promoted_products.through
        product_fk = Campaign.promoted_products.field.m2m_reverse_field_name()
        campaigns = list(through.objects.filter(**{product_fk: instance.pk}).values_list("campaign_id", flat=True))
        if not campaigns:
            return
        adapter = get_adapter()
        stock = adapter.product_stock(instance)
        available = stock is None or stock > 0
        backend = get_backend()
        if backend.shows_product_as(instance.pk, price=adapter.product_price(instance), available=available):
            return
        Campaign.objects.filter(pk__in=campaigns).update(updated_at=timezone.now())  # other processes re-read them
        backend.campaigns_changed(campaigns)
    except Exception:
        log.warning("could not check product %s against the serving index", instance.pk, exc_info=True)


def cart_changed(sender: Any, **kwargs: Any) -> None:
    """One of the shop's own cart signals (``ShopAdapter.cart_signals``): a cart event for its shopper."""
    try:
        from adengine.adapters import get_adapter
        from adengine.models import BehaviourEvent
        from adengine.services.behaviour import record_event
        from adengine.services.shoppers import get_or_create_for_user, shopper_for_request

        event = get_adapter().cart_event(sender, **kwargs)
        if event is None:
            return
        who, product, quantity = event
        if hasattr(who, "session") or hasattr(who, "META"):  # a request: its user, or its anonymous session
            shopper = shopper_for_request(who)
        else:
            shopper = get_or_create_for_user(user=who) if who is not None and who.is_authenticated else None
        if shopper is not None and product is not None:
            record_event(
                shopper=shopper,
                kind=BehaviourEvent.Kind.CART,
                product=product,
                quantity=max(int(quantity or 1), 1),
                source=BehaviourEvent.Source.SIGNAL,
            )
    except Exception:  # the shop's cart never breaks because of adengine
        log.exception("adengine could not record a cart event from %r", sender)


def logged_in(sender: type, request: Any, user: Any, **kwargs: Any) -> None:
    """Carry an anonymous session's behaviour over to the user who just logged in."""
    from adengine.services.shoppers import SESSION_KEY, merge_anonymous_into_user

    session = getattr(request, "session", None)
    key = session.pop(SESSION_KEY, None) if session is not None else None
    if not key:
        return
    try:
        merge_anonymous_into_user(anonymous_key=key, user=user)
    except Exception:
        log.exception("adengine could not merge anonymous behaviour into user %s", user.pk)


def serving_changed(sender: type, instance: Any = None, raw: bool = False, **kwargs: Any) -> None:
    """Campaigns, assets, placements or experiments changed: this process's serving index re-reads the campaign (or
    the shared rows) on next use."""
    from adengine.models import Campaign, Creative
    from adengine.serving import get_backend

    if sender is Campaign:
        get_backend().campaigns_changed([instance.pk])
    elif sender is Creative:
        get_backend().campaigns_changed([instance.campaign_id])
    else:  # a placement or an experiment: every campaign's digest is compared, the shared rows re-read
        get_backend().campaigns_changed([])


def campaign_links_changed(sender: type, instance: Any, action: str, reverse: bool, **kwargs: Any) -> None:
    """Promoted products or placements changed: touch the campaign so other processes rebuild too."""
    if not action.startswith("post_"):
        return
    from django.utils import timezone

    from adengine.models import Campaign
    from adengine.serving import get_backend

    if not reverse:
        Campaign.objects.filter(pk=instance.pk).update(updated_at=timezone.now())
        if sender is Campaign.promoted_products.through or action != "post_clear":
            _enqueue_target(instance.pk)
        get_backend().campaigns_changed([instance.pk])
    else:  # from a product's or a placement's side: the campaigns named (a clear names none: digests tell)
        get_backend().campaigns_changed(kwargs.get("pk_set") or [])


def campaign_saved(sender: type, instance: Any, raw: bool = False, **kwargs: Any) -> None:
    """A campaign's words may have changed: recompute its target vector in the worker."""
    from adengine.serving import get_backend

    get_backend().campaigns_changed([instance.pk])
    if not raw and not in_bulk_writes():
        _enqueue_target(instance.pk)


def _enqueue_target(campaign_id: int) -> None:
    from adengine.queues import enqueue_after_commit

    enqueue_after_commit(
        "adengine.refresh_campaign_targets", kwargs={"campaign_ids": [campaign_id]}, merge="campaign_ids"
    )


def add_beat_schedule(sender: Any, **kwargs: Any) -> None:
    """When beat starts: make sure its running scheduler has adengine's tasks.

    Beat builds its scheduler from ``beat_schedule`` before it sends ``beat_init`` (the banner reads
    it), so entries only added to the configuration here would never run: they go into the live
    scheduler too. (``AdengineConfig.ready`` adds them to the configuration earlier, which is what
    schedulers that read it later, such as django-celery-beat's, see.)
    """
    merge_beat_schedule(sender.app)
    scheduler = getattr(sender, "scheduler", None)
    if scheduler is None:
        return
    from adengine.tasks import beat_schedule

    missing = {key: entry for key, entry in beat_schedule().items() if key not in scheduler.schedule}
    if missing:
        scheduler.update_from_dict(missing)
        log.info("adengine periodic tasks added to the running beat: %s", ", ".join(sorted(missing)))


def connect() -> None:
    """Connect the handlers to the host's models."""
    post_save.connect(order_saved, sender=get_order_model(), dispatch_uid="adengine.order_saved")
    post_save.connect(product_saved, sender=get_product_model(), dispatch_uid="adengine.product_saved")
    post_save.connect(product_offer_changed, sender=get_product_model(), dispatch_uid="adengine.product_offer")
    user_logged_in.connect(logged_in, dispatch_uid="adengine.logged_in")
    from adengine.adapters import get_adapter

    for n, (signal, cart_sender) in enumerate(get_adapter().cart_signals()):
        signal.connect(cart_changed, sender=cart_sender, dispatch_uid=f"adengine.cart.{n}")
    beat_init.connect(add_beat_schedule, dispatch_uid="adengine.beat_schedule")
    from adengine.models import Campaign, Creative, Experiment, Placement

    post_save.connect(campaign_saved, sender=Campaign, dispatch_uid="adengine.campaign_saved")
    for model in (Campaign, Creative, Placement, Experiment):
        post_delete.connect(serving_changed, sender=model, dispatch_uid=f"adengine.serving_deleted.{model.__name__}")
    for model in (Creative, Placement, Experiment):
        post_save.connect(serving_changed, sender=model, dispatch_uid=f"adengine.serving_saved.{model.__name__}")
    for through in (Campaign.promoted_products.through, Campaign.placements.through):
        m2m_changed.connect(campaign_links_changed, sender=through, dispatch_uid=f"adengine.links.{through.__name__}")
