"""python manage.py adengine_load_campaigns FILE.json [--generate-copy]"""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from adengine.management.progress import bar, note
from adengine.models import Campaign, ProductVector
from adengine.queues import QueueUnavailable
from adengine.services.campaigns import SpecError, apply_campaign, apply_placement, refresh_targets
from adengine.services.creatives import CreativeRequestError, request_copy


class Command(BaseCommand):
    help = (
        'Create or update placements and campaigns from a JSON file: {"placements": [...], "campaigns": [...]} '
        "or a plain list of campaigns. Campaign keys: advertiser, name, status, description, keywords, languages, "
        "brand_voice, promoted_products (import keys), categories, objective, pricing, bid, total_budget, "
        "daily_budget, starts_at, ends_at, tier, frequency_cap, landing_url, audience_min_similarity, placements "
        "(keys), assets ({lang: {headlines: [...], descriptions: [...]}}, approved when they pass the rules). "
        "Idempotent on (advertiser, name). --generate-copy queues generated copy for each campaign language."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--generate-copy", action="store_true")
        parser.add_argument("--n", type=int, default=8)
        parser.add_argument(
            "--generate-limit",
            type=int,
            default=None,
            help="With --generate-copy: queue copy for the file's first N campaigns only (the rest keep their "
            "written copy; the worker's queue stays short).",
        )
        parser.add_argument(
            "--no-targets",
            action="store_true",
            help="Leave the target vectors of campaigns without written copy to the worker (scoring a campaign's "
            "written copy computes its target whatever this says).",
        )

    def handle(self, *args, **o):
        try:
            data = json.loads(o["file"].read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CommandError(f"{o['file']}: no such file") from None
        except json.JSONDecodeError as exc:
            raise CommandError(f"{o['file']}: not JSON: line {exc.lineno}: {exc.msg}") from exc
        if isinstance(data, list):
            data = {"campaigns": data}
        if not isinstance(data, dict) or set(data) - {"placements", "campaigns"}:
            raise CommandError(f"{o['file']}: expected a list of campaigns or {{'placements': [], 'campaigns': []}}")
        name = o["file"].name
        campaigns = []
        specs = data.get("campaigns", [])
        try:
            with transaction.atomic():
                for i, spec in enumerate(data.get("placements", []), 1):
                    placement = apply_placement(spec, where=f"{name} placement {i}")
                    self.stdout.write(f"placement {placement.key}")
                with bar(self, o["verbosity"], desc="campaigns", total=len(specs), unit="campaigns") as done:
                    for i, spec in enumerate(specs, 1):
                        campaign, created, notes = apply_campaign(spec, where=f"{name} campaign {i}")
                        campaigns.append(campaign)
                        self.stdout.write(f"{'created' if created else 'updated'} {campaign}")
                        for line in notes:
                            note(self, f"  {line}")
                        done.update(1)
        except SpecError as exc:
            raise CommandError(str(exc)) from None
        ids = [c.pk for c in campaigns]
        self._report_vectors(ids, written=None if o["no_targets"] else refresh_targets(campaign_ids=ids))
        if o["generate_copy"]:
            limit = o["generate_limit"]
            chosen = campaigns if limit is None else campaigns[: max(0, limit)]
            asks = [(campaign, language) for campaign in chosen for language in campaign.languages or ["en"]]
            with bar(self, o["verbosity"], desc="queueing copy", total=len(asks), unit="requests") as queued:
                for campaign, language in asks:
                    try:
                        request_copy(campaign=campaign, language=language, n=o["n"])
                        self.stdout.write(f"queued {o['n']} {language} variants for {campaign}")
                    except CreativeRequestError as exc:
                        note(self, f"{campaign}: {exc}")
                    except QueueUnavailable as exc:
                        raise CommandError(f"copy for {campaign} ({language}) not queued: {exc}") from None
                    queued.update(1)

    def _report_vectors(self, ids: list[int], *, written: int | None) -> None:
        """What the loaded campaigns' targeting stands on now: their promoted products' vectors and their targets.
        Scoring a campaign's written copy embeds its promoted products and computes its target as it loads, so
        most are there before ``refresh_targets`` (``written``: what it computed; None: not run)."""
        loaded = Campaign.objects.filter(pk__in=ids)
        products = {pk for pk in loaded.values_list("promoted_products", flat=True) if pk is not None}
        embedded = ProductVector.objects.filter(product_id__in=products).count()
        self.stdout.write(f"promoted products with a vector: {embedded} of {len(products)}")
        have = loaded.exclude(target_vector=None).count()
        parts = []
        if have - (written or 0):
            parts.append(
                f"{have - (written or 0)} already current: scoring a campaign's written copy computes its target"
            )
        if written:
            parts.append(f"{written} computed now")
        if written is None and have < len(ids):
            parts.append("the others are left to the worker (--no-targets)")
        detail = f" ({'; '.join(parts)})" if parts else ""
        self.stdout.write(f"target vectors: {have} of {len(ids)} campaigns have one{detail}")
