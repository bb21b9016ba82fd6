"""The impression log across a real database outage: the writer's connection is terminated and new connections
are refused (``ALLOW_CONNECTIONS false``); batches are kept and retried, and written when the database is back."""

from __future__ import annotations

import logging
import math
import time

import pytest

from adengine.models import Impression
from adengine.services.tracking import restore_impression
from adengine.serving import decide, tokens
from adengine.serving import log as impression_log_module
from adengine.serving.log import impression_log
from adengine.serving.propensity import fill
from tests.conftest import adengine_settings

from .outage import database_outage

pytestmark = pytest.mark.django_db(transaction=True)


def wait_for(condition, timeout: float = 30, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def async_log():
    with adengine_settings(SERVING_LOG_MODE="async", SERVING_LOG_FLUSH_SECONDS=0.05, SERVING_LOG_RETRY_MAX_SECONDS=0.5):
        yield impression_log
    impression_log.stop()


def test_a_batch_meeting_an_outage_is_kept_and_written_when_the_database_is_back(placement, make_campaign, async_log):
    make_campaign(headlines=2)
    # given a running writer that has written an impression (it holds a connection of its own)
    (first,) = decide(placement_key=placement.key, shopper=None).ads
    wait_for(lambda: Impression.objects.filter(nonce=first.nonce).exists(), what="the first impression")
    stats = impression_log_module.stats
    retries, dropped = stats["retries"], stats["dropped"]
    with database_outage():
        # when ads are served while the database refuses the writer
        ads = [ad for _ in range(40) for ad in decide(placement_key=placement.key, shopper=None).ads]
        wait_for(lambda: stats["retries"] >= retries + 2, what="the writer to fail and retry")
        # then nothing is dropped: the rows wait
        assert stats["dropped"] == dropped and stats["pending"] >= len(ads)
    # and once the database is back, every one of them is written, with its propensity
    nonces = [ad.nonce for ad in ads]
    wait_for(lambda: Impression.objects.filter(nonce__in=nonces).count() == len(nonces), what="the kept batch")
    assert stats["dropped"] == dropped and stats["pending"] == 0
    # with what their propensities are computed from (the strategy queue's task does it)
    written = Impression.objects.filter(nonce__in=nonces)
    assert fill(impression_ids=list(written.values_list("pk", flat=True)))["unknown"] == 0
    assert all(0 < p <= 1 for p in written.values_list("propensity", flat=True))


def test_beyond_the_buffer_the_oldest_are_dropped_counted_and_logged(placement, make_campaign, async_log, caplog):
    make_campaign()
    (first,) = decide(placement_key=placement.key, shopper=None).ads
    wait_for(lambda: Impression.objects.filter(nonce=first.nonce).exists(), what="the first impression")
    stats = impression_log_module.stats
    dropped = stats["dropped"]
    with adengine_settings(
        SERVING_LOG_MODE="async", SERVING_LOG_FLUSH_SECONDS=0.05, SERVING_LOG_RETRY_MAX_SECONDS=0.5,
        SERVING_LOG_MAX_PENDING=25,
    ), caplog.at_level(logging.ERROR, logger="adengine.serving.log"), database_outage():  # fmt: skip
        # when 40 impressions wait for a database that is down, in a buffer of 25
        ads = [ad for _ in range(40) for ad in decide(placement_key=placement.key, shopper=None).ads]
        # then the 15 oldest are dropped, counted and logged at ERROR with their number
        wait_for(lambda: "15 impression(s) dropped" in caplog.text, what="the drop to be logged")
        assert stats["dropped"] == dropped + 15
    # and the 25 newest are written when the database is back
    nonces = [ad.nonce for ad in ads]
    wait_for(lambda: Impression.objects.filter(nonce__in=nonces[15:]).count() == 25, what="the kept rows")
    assert not Impression.objects.filter(nonce__in=nonces[:15]).exists()


def test_the_writers_row_completes_one_restored_from_its_token(placement, make_campaign):
    # given an impression restored from its click link before its writer got to it
    make_campaign()
    with adengine_settings(SERVING_LOG_MODE="async", SERVING_LOG_FLUSH_SECONDS=3600, SERVING_LOG_BATCH=10**6):
        (ad,) = decide(placement_key=placement.key, shopper=None).ads
        assert restore_impression(tokens.read("click", tokens.make(nonce=ad.nonce, row=ad.row)))
        restored = Impression.objects.get(nonce=ad.nonce)
        assert math.isnan(restored.propensity) and restored.context == {"restored": True}
        # when the writer writes its row
        impression_log.stop()
    # then the same row (same id: its events stay attached) carries the decision's context, and its propensity once
    # the strategy queue's task has computed it
    row = Impression.objects.get(nonce=ad.nonce)
    assert row.pk == restored.pk and row.context["page"] == ""
    assert fill(impression_ids=[row.pk])["filled"] == 1
    row.refresh_from_db()
    assert row.pk == restored.pk and 0 < row.propensity <= 1 and row.context["page"] == ""
    assert row.policy != "restored" and row.candidates >= 1


def test_a_row_the_database_refuses_is_dropped_alone_and_the_batch_written(placement, make_campaign, caplog):
    import uuid

    from django.utils import timezone

    from adengine.serving.rows import PENDING, ImpressionRow

    # given a batch of three impressions, the middle one of a campaign deleted meanwhile (the log's foreign key
    # refuses it when the insert commits)
    campaign = make_campaign()

    def row(campaign_id: int) -> ImpressionRow:
        return ImpressionRow(
            nonce=uuid.uuid4(), decision_id=uuid.uuid4(), placement_id=placement.pk, campaign_id=campaign_id,
            creative_id=None, description_id=None, product_id=None, shopper_id=None, language="en", position=0,
            propensity=PENDING, predicted_ctr=0.01, relevance=0.5, value=0.01, candidates=1, personalised=False,
            policy="contextual-v1", context={"page": "home"}, served_at=timezone.now(),
        )  # fmt: skip

    rows = [row(campaign.pk), row(campaign.pk + 10**6), row(campaign.pk)]
    dropped = impression_log_module.stats["dropped"]
    # when the writer writes it
    with adengine_settings(SERVING_LOG_MODE="async", SERVING_LOG_FLUSH_SECONDS=3600, SERVING_LOG_BATCH=10**6):
        impression_log.write(rows)
        with caplog.at_level(logging.ERROR, logger="adengine.serving.log"):
            assert impression_log.flush() == 2
        impression_log.stop()
    # then the other two are written, and the refused one is counted and logged as dropped
    written = set(Impression.objects.values_list("nonce", flat=True))
    assert written == {rows[0].nonce, rows[2].nonce}
    assert impression_log_module.stats["dropped"] == dropped + 1
    assert "1 impression(s) dropped (refused by the database)" in caplog.text
