"""Creative studio: write copy with the copywriter, check it against the rules, rank it, review it."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
from celery.exceptions import SoftTimeLimitExceeded
from django.db import connection, transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from adengine import queues
from adengine.adapters import get_adapter
from adengine.conf import settings as ad_settings
from adengine.ml import compliance, copy_pairs, grounding, prompts
from adengine.ml.copywriter import CopywriterError, draft, get_copywriter, prompt_options
from adengine.ml.encoder import get_encoder
from adengine.models import Campaign, Creative, GenerationRequest, ProductVector
from adengine.queues import QueueUnavailable, publish, queue_for
from adengine.text import has_cjk

log = logging.getLogger(__name__)
MAX_VARIANTS = 32


class CreativeRequestError(ValueError):
    """The campaign or the request cannot produce copy; the message says why."""


class GenerationNotQueued(QueueUnavailable):
    """A copy request could not be queued (the broker is unreachable); ``request`` is stored as failed."""

    def __init__(self, request: GenerationRequest, reason: QueueUnavailable) -> None:
        super().__init__(str(reason))
        self.request = request


@dataclass
class Variant:
    asset_type: str
    text: str
    verdicts: list[compliance.Verdict]
    embedding: np.ndarray | None = None
    duplicate_of: str = ""
    audience_fit: float | None = None
    product_fit: float | None = None
    score: float | None = None

    @property
    def passed(self) -> bool:
        return compliance.passed(self.verdicts) and not self.duplicate_of

    @property
    def rule_results(self) -> list[dict]:
        """Every verdict as stored on the asset, the near-duplicate check included."""
        out = compliance.as_json(self.verdicts)
        if self.duplicate_of:
            out.append({"rule": "near_duplicate", "passed": False, "reason": f"too close to {self.duplicate_of!r}"})
        return out

    @property
    def reasons(self) -> list[str]:
        out = compliance.reasons(self.verdicts)
        if self.duplicate_of:
            out.append(f"near_duplicate: too close to {self.duplicate_of!r}")
        return out


@dataclass
class Outcome:
    variants: list[Variant] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    tokens: int = 0
    seconds: float = 0.0
    load_seconds: float = 0.0  # of them, loading the model (a worker's first request)
    model: str = ""
    prompt_version: str = prompts.PROMPT_VERSION


def languages() -> list[str]:
    """Languages with a prompt template."""
    return sorted(prompts.templates(ad_settings.PROMPT_TEMPLATES))


def _in_language(text: str, language: str) -> bool:
    cjk = has_cjk(text)
    return cjk if language == "zh" else not cjk


def campaign_inputs(campaign: Campaign, language: str) -> tuple[str, list[str], list[str], list[str]]:
    """(product text for the prompt, keywords in that language, product names, notes) through the shop adapter.

    A promoted product without a description is written about from its title, category and the keywords, and
    the notes say so."""
    adapter = get_adapter()
    products = list(campaign.promoted_products.all()[:3])
    all_keywords = [k.strip() for k in campaign.keywords if k.strip()]
    if not all_keywords and not products:
        raise CreativeRequestError(f"campaign {campaign.pk} has no keywords and no promoted products: add one of them")
    keywords = [k for k in all_keywords if _in_language(k, language)] or all_keywords
    names = [adapter.product_title(p, language) for p in products]
    notes: list[str] = []
    if products:
        first = products[0]
        desc = (adapter.product_description(first, language) or "").strip()
        if desc:  # the title and the description (prompts.as_data keeps the first 240 characters)
            product_text = copy_pairs.product_text(adapter.product_title(first, language), desc)
        else:
            category = adapter.category_name(adapter.product_category(first), language)
            facts = [adapter.product_title(first, language), category, ", ".join(keywords[:3])]
            product_text = ". ".join(f for f in facts if f)
            notes.append(
                f"{adapter.product_title(first, language) or 'the promoted product'} has no {language} description: "
                "the copy was written from its title, category and the campaign's keywords"
            )
    else:
        product_text = campaign.description or ", ".join(keywords)
    return product_text, keywords, names, notes


def campaign_facts(campaign: Campaign) -> grounding.Facts:
    """What the campaign states, for grounding claims: its promoted products' titles, descriptions, brands and
    categories (every language), its keywords, the advertiser's name and description of the campaign; and the
    shop's other brands (naming one is a claim the campaign cannot support)."""
    adapter = get_adapter()
    items: list[tuple[str, str]] = []
    brands = {campaign.advertiser.name} if campaign.advertiser_id else set()
    for product in campaign.promoted_products.all()[:20]:
        for language in languages():
            items.append(("product title", adapter.product_title(product, language)))
            items.append(("product description", adapter.product_description(product, language)))
            for category in adapter.product_categories(product):
                items.append(("category", adapter.category_name(category, language)))
        brand = adapter.product_brand(product)
        if brand:
            brands.add(brand)
            items.append(("brand", brand))
    items += [("keyword", k) for k in campaign.keywords if k.strip()]
    items += [("campaign", campaign.description), ("advertiser", campaign.advertiser.name)]
    return grounding.Facts(
        items=tuple((source, text) for source, text in items if text),
        brands=tuple(sorted(brands)),
        shop_brands=shop_brands(),
    )


def shop_brands() -> tuple[str, ...]:
    """Every brand the shop sells (a plain text ``brand`` field on the product model; else none)."""
    model = get_adapter().product_model()
    field = next((f for f in model._meta.concrete_fields if f.name == "brand"), None)
    if field is None or field.is_relation:
        return ()
    found = get_adapter().products().order_by().values_list("brand", flat=True).distinct()[:5000]
    return tuple(sorted({str(b) for b in found if b}))


def generate(
    *, campaign: Campaign, language: str, n: int, seed: int = 0, progress: Callable[[int], None] | None = None
) -> Outcome:
    """Write ``n`` headline+description variants, check each against the rules, drop near-duplicates, rank.

    Nothing is stored; ``store`` does that in one transaction.
    """
    template_set = prompts.templates(ad_settings.PROMPT_TEMPLATES)
    if language not in template_set:
        raise CreativeRequestError(f"unknown language {language!r}; known: {', '.join(sorted(template_set))}")
    if not 1 <= n <= MAX_VARIANTS:
        raise CreativeRequestError(f"n must be between 1 and {MAX_VARIANTS}")
    product_text, keywords, names, notes = campaign_inputs(campaign, language)
    facts = campaign_facts(campaign)
    cfg = ad_settings.COPYWRITER
    loading = time.perf_counter()
    writer = get_copywriter()  # loaded (and converted, once per machine) on a worker's first request
    loaded_in = time.perf_counter() - loading
    prompt = prompts.build(
        language=language,
        product=product_text,
        keywords=keywords or names,
        voice=campaign.brand_voice,
        template_set=template_set,
        **prompt_options(writer),
    )
    outcome = Outcome(model=writer.name, notes=notes, prompt_version=prompt.version, load_seconds=loaded_in)
    rule_set = compliance.rules(ad_settings.COMPLIANCE)
    started = time.perf_counter()

    def judge(text: str, asset_type: str) -> list[compliance.Verdict]:
        return compliance.check(
            text,
            asset_type=asset_type,
            language=language,
            keywords=keywords,
            product_names=names,
            prompt=prompt.boilerplate,
            rule_set=rule_set,
            facts=facts,
            generated=True,
        )

    drafts, outcome.tokens = draft(
        writer, prompt, n=n, seed=seed, settings=cfg, template_set=template_set, judge=judge, progress=progress
    )
    outcome.variants = [Variant(d.asset_type, d.text, d.verdicts) for d in drafts]
    outcome.seconds = time.perf_counter() - started
    _dedupe_and_rank(campaign, outcome.variants, rule_set=rule_set)
    return outcome


def _dedupe_and_rank(
    campaign: Campaign, variants: list[Variant], *, rule_set: dict, exclude_pk: int | None = None
) -> None:
    """Embed variants, mark near-duplicates (of each other or of stored assets but ``exclude_pk``), score the rest.

    A near-duplicate is as close as the encoder's ``NEAR_DUPLICATE_COSINE`` *and* shares the wording
    (``compliance.overlap`` at least ``NEAR_DUPLICATE_OVERLAP``): distinct copy about one product is often as
    close as 0.95 to the encoder."""
    threshold, wording = float(rule_set["NEAR_DUPLICATE_COSINE"]), float(rule_set["NEAR_DUPLICATE_OVERLAP"])
    texts = [v for v in variants if v.text]
    if not texts:
        return
    vectors = get_encoder().encode_passages([v.text for v in texts])
    for v, vec in zip(texts, vectors, strict=True):
        v.embedding = vec
    centroid, products = fit_targets(campaign)
    if products is not None:
        others = _unrelated_products(campaign)
        for v in texts:  # descriptions describe the product; a headline may be evocative ("Quiet the commute")
            if v.asset_type == Creative.AssetType.DESCRIPTION:
                v.verdicts = [*v.verdicts, product_fit_verdict(v.embedding, products, others)]
    existing = list(
        Creative.objects.filter(campaign=campaign)
        .exclude(embedding=None)
        .exclude(status=Creative.Status.REJECTED)
        .exclude(pk=exclude_pk)
        .values_list("asset_type", "text", "embedding")
    )
    kept: list[tuple[str, str, np.ndarray]] = [(t, x, np.asarray(e, np.float32)) for t, x, e in existing]
    for v in texts:
        if not compliance.passed(v.verdicts):
            continue
        for asset_type, text, emb in kept:
            if asset_type == v.asset_type and (
                text == v.text or (float(emb @ v.embedding) > threshold and compliance.overlap(text, v.text) >= wording)
            ):
                v.duplicate_of = text
                break
        else:
            kept.append((v.asset_type, v.text, v.embedding))
    for v in texts:
        v.audience_fit, v.product_fit, v.score = fit(v.embedding, centroid, products)


PRODUCT_FIT_SAMPLE = 300  # other products the copy is compared with
PRODUCT_FIT_QUANTILE = 0.5  # the copy must be closer to its own product than to half of them


def _unrelated_products(campaign: Campaign) -> np.ndarray | None:
    """Embeddings of a sample of the catalog's other products (spread over the table by id), or None."""
    own = list(campaign.promoted_products.values_list("pk", flat=True))
    ids = list(ProductVector.objects.exclude(product_id__in=own).order_by("product_id").values_list("pk", flat=True))
    if len(ids) < 20:
        return None
    step = max(1, len(ids) // PRODUCT_FIT_SAMPLE)
    picked = ids[::step][:PRODUCT_FIT_SAMPLE]
    rows = ProductVector.objects.filter(pk__in=picked).values_list("embedding", flat=True)
    return np.stack([np.asarray(e, np.float32) for e in rows])


def product_fit_verdict(embedding: np.ndarray, products: np.ndarray, others: np.ndarray | None) -> compliance.Verdict:
    """The copy is about its product: its encoder similarity to the campaign's closest promoted product is above
    its median similarity to a sample of the catalog's other products (so "crunchy dog food" for a pair of earbuds
    fails, while an evocative headline that names no product, "Quiet the commute", passes). The bar comes from the
    shop's own catalog, not from a fixed similarity."""
    if others is None:
        return compliance.Verdict("product_fit", True)
    own = float((products @ embedding).max())
    bar = float(np.quantile(others @ embedding, PRODUCT_FIT_QUANTILE))
    if own >= bar:
        return compliance.Verdict("product_fit", True)
    return compliance.Verdict(
        "product_fit",
        False,
        f"reads more like other products of the shop than its own (similarity {own:.2f} to its product, "
        f"{bar:.2f} to the shop's other products, median)",
    )


def fit_targets(campaign: Campaign) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The campaign audience's interest centroid and its promoted products' vectors."""
    from adengine.selectors.audience import campaign_audience
    from adengine.services.campaigns import campaign_target

    ids = list(campaign.promoted_products.values_list("pk", flat=True))
    missing = set(ids) - set(ProductVector.objects.filter(product_id__in=ids).values_list("product_id", flat=True))
    if missing:  # promoted products not embedded yet (their task has not run): embed them now, before the target
        # is computed from them (computed first, the target would miss them and be computed again next time)
        from adengine.services.products import embed_products

        embed_products(product_ids=list(missing))
    audience = campaign_audience(campaign, campaign_target(campaign), k=int(ad_settings.CREATIVE_AUDIENCE_SIZE))
    centroid = None
    if audience:
        vecs = np.stack([np.asarray(m.shopper.interest_vector, np.float32) for m in audience])
        mean = vecs.mean(axis=0)
        centroid = mean / max(float(np.linalg.norm(mean)), 1e-9)
    rows = [
        np.asarray(e, np.float32)
        for e in ProductVector.objects.filter(product_id__in=ids).values_list("embedding", flat=True)
    ]
    return centroid, (np.stack(rows) if rows else None)


def fit(
    embedding: np.ndarray | None, centroid: np.ndarray | None, products: np.ndarray | None
) -> tuple[float | None, float | None, float | None]:
    """(audience fit, product fit, score): cosine to the centroid, mean cosine to products, their mix."""
    if embedding is None:
        return None, None, None
    audience = float(embedding @ centroid) if centroid is not None else None
    product = float((products @ embedding).mean()) if products is not None else None
    w = float(ad_settings.CREATIVE_AUDIENCE_WEIGHT)
    parts = [(w, audience), (1.0 - w, product)]
    total = sum(weight for weight, value in parts if value is not None)
    score = sum(weight * value for weight, value in parts if value is not None) / total if total else None
    return audience, product, score


@transaction.atomic
def store(*, request: GenerationRequest, outcome: Outcome) -> list[Creative]:
    """Write a request's variants as draft assets (rejected ones with their reasons), all or nothing."""
    made = []
    for v in outcome.variants:
        if not v.text:
            continue
        obj, created = Creative.objects.get_or_create(
            campaign=request.campaign,
            asset_type=v.asset_type,
            language=request.language,
            text=v.text,
            defaults=dict(
                source=Creative.Source.GENERATED,
                model_name=outcome.model,
                prompt_version=outcome.prompt_version,
                request=request,
                rule_results=v.rule_results,
                passes_rules=v.passed,
                status=Creative.Status.DRAFT if v.passed else Creative.Status.REJECTED,
                embedding=v.embedding,
                audience_fit=v.audience_fit,
                product_fit=v.product_fit,
                score=v.score,
            ),
        )
        if created:
            made.append(obj)
    return made


class _Heartbeat:
    """While a request runs, a thread records every GENERATION_HEARTBEAT_SECONDS that its worker is alive.

    A model call can take longer than any sensible bound, so progress alone cannot tell a slow worker from a
    dead one; a killed worker's heartbeat stops, and the sweeper sees it.
    """

    def __init__(self, request_pk) -> None:
        self.pk = request_pk
        self.interval = float(ad_settings.GENERATION_HEARTBEAT_SECONDS)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, name=f"adengine-heartbeat-{request_pk}", daemon=True)

    def __enter__(self) -> _Heartbeat:
        if self.interval > 0:
            self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join(timeout=self.interval + 5)

    def run(self) -> None:
        try:
            while not self.stop.wait(self.interval):
                try:
                    GenerationRequest.objects.filter(pk=self.pk, status=GenerationRequest.Status.RUNNING).update(
                        heartbeat_at=timezone.now()
                    )
                except Exception:  # the database may be briefly away: the next beat tries again
                    log.warning("heartbeat of generation request %s not recorded", self.pk, exc_info=True)
        finally:
            connection.close()  # this thread's own connection


def _claim(request_id: str, task_id: str | None) -> tuple[GenerationRequest | None, bool]:
    """Lock a request and mark it running for this worker; (request, whether this worker should write it)."""
    Status = GenerationRequest.Status
    now = timezone.now()
    with transaction.atomic():
        request = GenerationRequest.objects.select_for_update().select_related("campaign").filter(pk=request_id).first()
        if request is None:
            log.info("generation request %s is gone", request_id)
            return None, False
        if request.status in (Status.DONE, Status.FAILED):
            return request, False  # a duplicate or redelivered message: the work is done
        stale = now - timedelta(seconds=float(ad_settings.GENERATION_STALE_SECONDS))
        redelivered = bool(task_id) and task_id == request.task_id  # its last worker died on this very message
        alive = request.heartbeat_at is not None and request.heartbeat_at > stale
        if request.status == Status.RUNNING and alive and not redelivered:
            log.info("generation request %s is being written by another worker; leaving it to that one", request_id)
            return request, False
        if request.attempts >= int(ad_settings.GENERATION_MAX_ATTEMPTS):
            request.status = Status.FAILED
            request.error = (
                f"its worker stopped {request.attempts} time(s) while writing it (killed, out of memory or "
                "restarted); not tried again -- ask again, and see the worker's log"
            )
            request.finished_at = now
            request.save(update_fields=["status", "error", "finished_at"])
            return request, False
        request.status = Status.RUNNING
        request.attempts += 1
        request.task_id = task_id or ""
        request.heartbeat_at = request.started_at = now
        request.save(update_fields=["status", "attempts", "task_id", "heartbeat_at", "started_at"])
        return request, True


def run_request(
    request_id: str, *, task_id: str | None = None, progress: Callable[[int], None] | None = None
) -> GenerationRequest | None:
    """Carry out a generation request once; a finished request is left as it is. Never raises for bad input.

    ``task_id`` is the Celery task carrying it: the same task id again means its worker died mid-way and the
    broker handed the message out again, so the work is taken over; another task (a duplicate message) leaves
    a request whose worker is alive to that worker. Assets are written in one transaction, keyed by their text,
    so a request redone writes each asset once.
    """
    request, mine = _claim(request_id, task_id)
    if request is None or not mine:
        return request

    def report(done: int) -> None:
        GenerationRequest.objects.filter(pk=request.pk).update(progress=done, heartbeat_at=timezone.now())
        if progress:
            progress(done)

    try:
        with _Heartbeat(request.pk):
            outcome = generate(
                campaign=request.campaign, language=request.language, n=request.n, seed=request.seed, progress=report
            )
        with transaction.atomic():
            store(request=request, outcome=outcome)
            passed = sum(v.passed for v in outcome.variants)
            request.status = GenerationRequest.Status.DONE
            request.model_name = outcome.model
            request.stats = {
                "tokens": outcome.tokens,
                "seconds": round(outcome.seconds, 2),
                "load_seconds": round(outcome.load_seconds, 2),
                "passed": passed,
                "rejected": len(outcome.variants) - passed,
                "tokens_per_second": round(outcome.tokens / outcome.seconds, 2) if outcome.seconds else 0,
                # why the others were rejected, counted by rule (a variant may fail several)
                "rejections": dict(
                    Counter(r["rule"] for v in outcome.variants for r in v.rule_results if not r["passed"])
                ),
                "notes": outcome.notes,
            }
            request.progress = request.n
            request.finished_at = timezone.now()
            request.save(update_fields=["status", "model_name", "stats", "progress", "finished_at"])
    except Exception as exc:  # the worker must survive anything; the reason goes on the request
        if isinstance(exc, SoftTimeLimitExceeded):
            limit = queues.time_limit("adengine.generate_creatives")
            reason = f"stopped at its time limit ({limit} s, ADENGINE['TASK_TIME_LIMITS'])"
        else:
            reason = str(exc)[:2000]
            if not isinstance(exc, CreativeRequestError | CopywriterError):
                log.exception("generation request %s failed", request_id)
        GenerationRequest.objects.filter(pk=request.pk).update(
            status=GenerationRequest.Status.FAILED, error=reason, finished_at=timezone.now()
        )
        request.refresh_from_db()
    return request


def request_copy(
    *, campaign: Campaign, language: str, n: int, user=None, seed: int = 0, enqueue: bool = True
) -> GenerationRequest:
    """Validate and record a generation request, and queue it once committed.

    Raises GenerationNotQueued (the request is then stored as failed, with the reason) when the broker cannot be
    reached within PUBLISH_RETRY_POLICY, when called outside a transaction; inside one, the request is queued
    when it commits, and a failure then is logged and stored on the request.
    """
    if language not in languages():
        raise CreativeRequestError(f"unknown language {language!r}; known: {', '.join(languages())}")
    if not 1 <= n <= MAX_VARIANTS:
        raise CreativeRequestError(f"n must be between 1 and {MAX_VARIANTS}")
    campaign_inputs(campaign, language)  # raises for a campaign with nothing to write about
    request = GenerationRequest.objects.create(
        campaign=campaign,
        language=language,
        n=n,
        seed=seed,
        requested_by=user if getattr(user, "is_authenticated", False) else None,
    )
    if enqueue:
        # inside an outer transaction the failure comes at its commit, when the caller cannot answer any more:
        # then it is logged (robust) and the row says why
        transaction.on_commit(lambda: queue_request(request), robust=connection.in_atomic_block)
    return request


def queue_request(request: GenerationRequest) -> None:
    """Send a request's task to the broker; when it cannot be reached, fail the request with the reason and raise."""
    from adengine.tasks import generate_creatives

    GenerationRequest.objects.filter(pk=request.pk).update(queued=F("queued") + 1, heartbeat_at=timezone.now())
    kwargs = {"campaign_id": request.campaign_id, "language": request.language, "n": request.n}
    try:
        publish(generate_creatives, kwargs={**kwargs, "request_id": str(request.pk)})
    except QueueUnavailable as exc:
        GenerationRequest.objects.filter(pk=request.pk, status=GenerationRequest.Status.QUEUED).update(
            status=GenerationRequest.Status.FAILED,
            error=f"could not be queued: {exc}"[:2000],
            finished_at=timezone.now(),
        )
        request.refresh_from_db()
        raise GenerationNotQueued(request, exc) from exc


def sweep_requests() -> dict[str, int]:
    """Queue again the copy requests whose worker died (no heartbeat) or whose message was lost; fail the hopeless.

    A running request without a heartbeat for GENERATION_STALE_SECONDS, or a queued one not started within
    GENERATION_QUEUED_SECONDS, is queued again (the task is idempotent per request, so a message that turns up
    later changes nothing) -- unless it has been started or queued GENERATION_MAX_ATTEMPTS times: then it fails
    with a message that says why.
    """
    Status = GenerationRequest.Status
    now = timezone.now()
    running_bound = now - timedelta(seconds=float(ad_settings.GENERATION_STALE_SECONDS))
    queued_bound = now - timedelta(seconds=float(ad_settings.GENERATION_QUEUED_SECONDS))
    stuck = (
        GenerationRequest.objects.annotate(last_sign=Coalesce("heartbeat_at", "created_at"))
        .filter(
            Q(status=Status.RUNNING, last_sign__lt=running_bound) | Q(status=Status.QUEUED, last_sign__lt=queued_bound)
        )
        .order_by("created_at")
    )
    max_attempts = int(ad_settings.GENERATION_MAX_ATTEMPTS)
    result = {"requeued": 0, "failed": 0, "unreachable": 0}
    for pk in list(stuck.values_list("pk", flat=True)[:100]):
        with transaction.atomic():
            request = stuck.select_for_update(skip_locked=True, of=("self",)).filter(pk=pk).first()
            if request is None:
                continue  # it moved on meanwhile, or another sweeper holds it
            last = request.last_sign
            if request.status == Status.RUNNING and request.attempts >= max_attempts:
                request.error = (
                    f"its worker stopped answering (last heartbeat {last:%Y-%m-%d %H:%M:%S} UTC) on attempt "
                    f"{request.attempts} of {max_attempts}; not tried again -- ask again, and see the worker's log"
                )
            elif request.status == Status.QUEUED and request.queued >= max_attempts:
                queue = queue_for("adengine.generate_creatives") or "the default queue"
                request.error = (
                    f"no worker started it within {int(ad_settings.GENERATION_QUEUED_SECONDS)} s, though queued "
                    f"{request.queued} times: is a worker consuming {queue!r}?"
                )
            else:
                request.error = ""
            if request.error:
                request.status, request.finished_at = Status.FAILED, now
                request.save(update_fields=["status", "error", "finished_at"])
                log.warning("generation request %s failed: %s", pk, request.error)
                result["failed"] += 1
                continue
            from adengine.tasks import generate_creatives

            kwargs = {"campaign_id": request.campaign_id, "language": request.language, "n": request.n}
            try:
                publish(generate_creatives, kwargs={**kwargs, "request_id": str(pk)})
            except QueueUnavailable:
                log.warning("generation request %s could not be queued again; next sweep", pk, exc_info=True)
                result["unreachable"] += 1
                continue
            log.warning("generation request %s was %s since %s; queued again", pk, request.status, last)
            request.status, request.queued, request.heartbeat_at = Status.QUEUED, request.queued + 1, now
            request.save(update_fields=["status", "queued", "heartbeat_at"])
            result["requeued"] += 1
    return result


@transaction.atomic
def _judged(*, campaign: Campaign, asset_type: str, language: str, text: str, exclude_pk: int | None = None) -> Variant:
    """A person's text through the same rules, near-duplicate check and ranking as generated copy."""
    if asset_type not in Creative.AssetType.values:
        raise CreativeRequestError(f"asset_type must be one of {', '.join(Creative.AssetType.values)}")
    if language not in languages():
        raise CreativeRequestError(f"unknown language {language!r}; known: {', '.join(languages())}")
    text = compliance.normalise(text)
    if not text:
        raise CreativeRequestError("text is empty")
    rule_set = compliance.rules(ad_settings.COMPLIANCE)
    inputs = rule_inputs(campaign, language)
    verdicts = check_text(text, inputs=inputs, asset_type=asset_type, language=language, rule_set=rule_set)
    variant = Variant(asset_type, text, verdicts)
    _dedupe_and_rank(campaign, [variant], rule_set=rule_set, exclude_pk=exclude_pk)
    return variant


@dataclass(frozen=True)
class RuleInputs:
    """What the rules read of a campaign: its keywords, product names (in the language) and facts."""

    keywords: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    facts: grounding.Facts | None = None


def rule_inputs(campaign: Campaign | None, language: str) -> RuleInputs:
    """The campaign's inputs to the rules (none without a campaign: the rules that need them pass)."""
    if campaign is None:
        return RuleInputs()
    adapter = get_adapter()
    return RuleInputs(
        keywords=tuple(campaign.keywords),
        names=tuple(adapter.product_title(p, language) for p in campaign.promoted_products.all()[:3]),
        facts=campaign_facts(campaign),
    )


def check_text(
    text: str, *, inputs: RuleInputs, asset_type: str, language: str, rule_set: dict, generated: bool = False
) -> list[compliance.Verdict]:
    """The rules' verdicts on a normalised text, with a campaign's inputs (``rule_inputs``)."""
    return compliance.check(
        text,
        asset_type=asset_type,
        language=language,
        keywords=inputs.keywords,
        product_names=inputs.names,
        rule_set=rule_set,
        facts=inputs.facts,
        generated=generated,
    )


@transaction.atomic  # a duplicate (IntegrityError) rolls back only this
def add_human_asset(*, campaign: Campaign, asset_type: str, language: str, text: str, user=None) -> Creative:
    """A person's asset: the same rules, near-duplicate check and ranking as generated ones."""
    variant = _judged(campaign=campaign, asset_type=asset_type, language=language, text=text)
    return Creative.objects.create(
        campaign=campaign,
        asset_type=asset_type,
        language=language,
        text=variant.text,
        source=Creative.Source.HUMAN,
        rule_results=variant.rule_results,
        passes_rules=variant.passed,
        status=Creative.Status.DRAFT if variant.passed else Creative.Status.REJECTED,
        embedding=variant.embedding,
        audience_fit=variant.audience_fit,
        product_fit=variant.product_fit,
        score=variant.score,
        reviewed_by=None,
    )


@transaction.atomic
def edit_asset(*, creative: Creative, text: str, user=None) -> Creative:
    """New words for an asset: the rules run again and it goes back to review (an approved asset is not served
    with text nobody approved); a text that fails the rules leaves it rejected, with the reasons."""
    variant = _judged(
        campaign=creative.campaign,
        asset_type=creative.asset_type,
        language=creative.language,
        text=text,
        exclude_pk=creative.pk,
    )
    if variant.text == creative.text:
        return creative
    creative.text = variant.text
    creative.rule_results = variant.rule_results
    creative.passes_rules = variant.passed
    creative.status = Creative.Status.DRAFT if variant.passed else Creative.Status.REJECTED
    creative.embedding = variant.embedding
    creative.audience_fit, creative.product_fit, creative.score = (
        variant.audience_fit,
        variant.product_fit,
        variant.score,
    )
    creative.reviewed_by = None
    creative.save()
    return creative


def review(*, creatives, approve: bool, user=None) -> int:
    """Approve or reject assets; an asset that fails the rules cannot be approved. Returns how many changed."""
    status = Creative.Status.APPROVED if approve else Creative.Status.REJECTED
    qs = creatives.exclude(status=status)
    if approve:
        qs = qs.filter(passes_rules=True)
    campaigns = set(qs.values_list("campaign_id", flat=True).distinct())
    changed = qs.update(
        status=status, reviewed_by=user if getattr(user, "is_authenticated", False) else None, updated_at=timezone.now()
    )
    if changed:  # a bulk update sends no post_save: this process's serving index re-reads these campaigns on next
        # use, and the other processes see the rows' new versions when they check theirs
        from adengine.serving import get_backend

        get_backend().campaigns_changed(campaigns)
    return changed


def rescore(*, campaign: Campaign) -> int:
    """Recompute the audience-fit scores of a campaign's assets (after its audience changed)."""
    centroid, products = fit_targets(campaign)
    n = 0
    for c in Creative.objects.filter(campaign=campaign).exclude(embedding=None):
        c.audience_fit, c.product_fit, c.score = fit(np.asarray(c.embedding, np.float32), centroid, products)
        c.save(update_fields=["audience_fit", "product_fit", "score", "updated_at"])
        n += 1
    return n
