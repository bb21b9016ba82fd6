"""Celery tasks: thin, primitive arguments, safe to run twice. The work is in services.

Every task is an ``AdengineTask``: acknowledged late and handed out again when its worker dies (all are
idempotent), time-limited by its queue (``TASK_TIME_LIMITS``), routed by ``ADENGINE["ROUTES"]``.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import transaction

from adengine.queues import AdengineTask

log = logging.getLogger(__name__)


@shared_task(name="adengine.refresh_interests", ignore_result=True, base=AdengineTask)
def refresh_interests() -> dict:
    """Coordinator of the interest refresh (beat runs it; new behaviour triggers it): split the stale shoppers into
    chunks and queue one ``refresh_interest_chunk`` per chunk once the plan is committed. A plan that rewrites most
    indexed shoppers first drops the shopper vector indexes (a bulk load); once no bulk load is left to write, the
    indexes are built again (``build_interest_index``)."""
    from adengine.queues import enqueue_after_commit
    from adengine.services import interest_indexes
    from adengine.services.interests import plan_refresh

    with transaction.atomic():
        chunks = plan_refresh()
    dropped = []
    if chunks and interest_indexes.bulk_load_due(interest_indexes.open_refresh_shoppers()):
        dropped = interest_indexes.drop_vector_indexes()  # before any chunk writes: concurrently, outside a transaction
    for chunk_id in chunks:
        enqueue_after_commit("adengine.refresh_interest_chunk", kwargs={"chunk_id": chunk_id})
    if chunks:
        log.info("interest refresh: %d chunk(s) queued%s", len(chunks), " (bulk: indexes dropped)" if dropped else "")
    elif interest_indexes.rebuild_due():
        enqueue_after_commit("adengine.build_interest_index")
    return {"chunks": len(chunks), **({"dropped": dropped} if dropped else {})}


@shared_task(name="adengine.refresh_interest_chunk", ignore_result=True, base=AdengineTask, bind=True, max_retries=None)
def refresh_interest_chunk(self, chunk_id: int) -> dict | None:
    """Refresh the stale shoppers of one chunk (idempotent); a failure retries this chunk alone, with backoff. The
    chunk that leaves no bulk load to write queues the build of the vector indexes a bulk refresh dropped."""
    from adengine.conf import settings as ad_settings
    from adengine.queues import enqueue_after_commit
    from adengine.services import interest_indexes
    from adengine.services.interests import refresh_chunk

    try:
        result = refresh_chunk(chunk_id)
    except Exception as exc:
        retries = int(ad_settings.INTEREST_REFRESH_CHUNK_RETRIES)
        if self.request.retries >= retries:
            log.exception("interest refresh chunk %s failed %d times; left to the next plan", chunk_id, retries + 1)
            return None
        log.warning("interest refresh chunk %s failed (%s); retrying it", chunk_id, exc)
        raise self.retry(exc=exc, countdown=min(300, 10 * 2**self.request.retries)) from exc
    if result is not None and "skipped" not in result and interest_indexes.rebuild_due():
        enqueue_after_commit("adengine.build_interest_index")
    return result


@shared_task(name="adengine.build_interest_index", ignore_result=True, base=AdengineTask)
def build_interest_index() -> dict | None:
    """Build one shopper vector index that is missing or invalid (concurrently), then queue itself for the next."""
    from adengine.queues import enqueue_after_commit
    from adengine.services.interest_indexes import build_vector_index

    built = build_vector_index()
    if built is not None:
        log.info("interest index build: %s", built)
        if built["left"]:
            enqueue_after_commit("adengine.build_interest_index")
    return built


@shared_task(name="adengine.train_interest_model", ignore_result=True, base=AdengineTask)
def train_interest_model() -> dict:
    """Fit the hybrid interest model, choose its weights on held-out behaviour, switch when it beats the live one."""
    from adengine.services.interest_model import train_interest_model as run

    result = run()
    log.info("interest model training: %s", {k: v for k, v in result.items() if k != "validation"})
    return {k: v for k, v in result.items() if k in ("trained", "version", "switched", "decision", "reason")}


@shared_task(name="adengine.embed_products", ignore_result=True, base=AdengineTask)
def embed_products(product_ids: list[str] | None = None) -> int:
    """(Re-)embed the given products, or every product whose text changed."""
    from adengine.services.products import embed_products as run

    return run(product_ids=product_ids)


def beat_schedule() -> dict:
    """adengine's periodic tasks; merged into the beat schedule unless the host defines the same keys."""
    from adengine.conf import settings as ad_settings

    return {
        "adengine.refresh_interests": {
            "task": "adengine.refresh_interests",
            "schedule": float(ad_settings.REFRESH_INTERVAL_SECONDS),
        },
        "adengine.embed_products": {"task": "adengine.embed_products", "schedule": 3600.0},
        "adengine.train_interest_model": {
            "task": "adengine.train_interest_model",
            "schedule": float(ad_settings.INTEREST_TRAIN_INTERVAL_SECONDS),
        },
        "adengine.refresh_campaign_targets": {"task": "adengine.refresh_campaign_targets", "schedule": 300.0},
        "adengine.update_strategy": {
            "task": "adengine.update_strategy",
            "schedule": float(ad_settings.STRATEGY_INTERVAL_SECONDS),
        },
        "adengine.fill_propensities": {
            "task": "adengine.fill_propensities",
            "schedule": float(ad_settings.PROPENSITY_SWEEP_SECONDS),
        },
        "adengine.sweep_generation_requests": {
            "task": "adengine.sweep_generation_requests",
            "schedule": float(ad_settings.SWEEP_INTERVAL_SECONDS),
        },
        "adengine.maintain_log_partitions": {
            "task": "adengine.maintain_log_partitions",
            "schedule": float(ad_settings.LOG_PARTITION_INTERVAL_SECONDS),
        },
    }


@shared_task(name="adengine.update_strategy", ignore_result=True, base=AdengineTask)
def update_strategy() -> dict:
    """Learn from the log since the last run (incremental, idempotent); refit the click model when due (its own
    transaction, after the roll-up's: a long fit never holds the strategy's lock)."""
    from adengine.services.click_models import refit
    from adengine.services.strategy import update_strategy as run
    from adengine.services.tracking import purge_rate_counters
    from adengine.serving import counters

    purge_rate_counters()
    counters.purge()
    result = run()
    result.update(refit())
    return result


@shared_task(name="adengine.refresh_campaign_targets", ignore_result=True, base=AdengineTask)
def refresh_campaign_targets(campaign_ids: list[int] | None = None) -> int:
    """Recompute campaigns' target vectors whose words, products or encoder changed."""
    from adengine.services.campaigns import refresh_targets

    return refresh_targets(campaign_ids=campaign_ids)


@shared_task(name="adengine.reembed_all", ignore_result=True, base=AdengineTask)
def reembed_all() -> dict:
    """Re-embed every product and shopper with the encoder in use (after a switch)."""
    from adengine.services.encoders import reembed_all as run

    return run()


@shared_task(name="adengine.generate_creatives", ignore_result=True, base=AdengineTask, bind=True)
def generate_creatives(self, request_id: str, **kwargs) -> str | None:
    """Write the copy of one recorded request (``services.creatives.request_copy`` records and queues it).
    Idempotent per request id: a retried or duplicated task writes once. The request's own fields say what to
    write; other keyword arguments (campaign_id, language, n: for reading the queue) are ignored."""
    from adengine.services.creatives import run_request

    request = run_request(request_id, task_id=self.request.id)
    return request.status if request else None


@shared_task(name="adengine.sweep_generation_requests", ignore_result=True, base=AdengineTask)
def sweep_generation_requests() -> dict:
    """Queue again, or fail with a message, copy requests whose worker died or whose message was lost."""
    from adengine.services.creatives import sweep_requests

    result = sweep_requests()
    if any(result.values()):
        log.info("copy request sweep: %s", result)
    return result


@shared_task(name="adengine.fill_propensities", ignore_result=True, base=AdengineTask)
def fill_propensities(impression_ids: list[int] | None = None) -> dict:
    """Compute the unknown propensities of the given impressions (sent by the web processes' log writers), or of
    those served in the last two sweep intervals (beat's sweep)."""
    import datetime as dt

    from django.utils import timezone

    from adengine.conf import settings as ad_settings
    from adengine.serving.propensity import fill

    if impression_ids is not None:
        return fill(impression_ids=impression_ids)
    window = 2 * float(ad_settings.PROPENSITY_SWEEP_SECONDS) + 600
    return fill(since=timezone.now() - dt.timedelta(seconds=window))


@shared_task(name="adengine.maintain_log_partitions", ignore_result=True, base=AdengineTask)
def maintain_log_partitions() -> dict:
    """The logs' daily partitions: LOG_PARTITIONS_AHEAD days created ahead, strays of the default partition moved,
    closed days vacuumed, days past LOG_RETENTION_DAYS dropped once rolled up (idempotent)."""
    from adengine.services.log_partitions import maintain

    return maintain().as_dict()
