"""python manage.py adengine_load_campaigns FILE.json [--generate-copy]"""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from adengine.adapters import get_adapter
from adengine.models import Advertiser, Campaign
from adengine.services.creatives import CreativeRequestError, request_copy

FIELDS = {"advertiser", "name", "status", "description", "keywords", "languages", "brand_voice", "promoted_products"}


class Command(BaseCommand):
    help = (
        "Create or update advertisers and campaigns from a JSON list (keys: advertiser, name, status, "
        "description, keywords, languages, brand_voice, promoted_products as import keys). Idempotent on "
        "(advertiser, name). --generate-copy queues copy generation for each campaign language."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--generate-copy", action="store_true")
        parser.add_argument("--n", type=int, default=8)

    def handle(self, *args, **o):
        try:
            items = json.loads(o["file"].read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CommandError(f"{o['file']}: no such file") from None
        except json.JSONDecodeError as exc:
            raise CommandError(f"{o['file']}: not JSON: {exc}") from exc
        if not isinstance(items, list):
            raise CommandError(f"{o['file']}: expected a JSON list of campaigns")
        adapter = get_adapter()
        campaigns = []
        with transaction.atomic():
            for i, item in enumerate(items, 1):
                where = f"{o['file'].name} item {i}"
                if not isinstance(item, dict) or not item.get("advertiser") or not item.get("name"):
                    raise CommandError(f"{where}: needs 'advertiser' and 'name'")
                unknown = set(item) - FIELDS
                if unknown:
                    raise CommandError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
                status = item.get("status", Campaign.Status.DRAFT)
                if status not in Campaign.Status.values:
                    raise CommandError(f"{where}: status must be one of {', '.join(Campaign.Status.values)}")
                products = []
                for key in item.get("promoted_products", []):
                    product = adapter.find_product(str(key))
                    if product is None:
                        raise CommandError(f"{where}: no product {key!r} in the shop")
                    products.append(product)
                advertiser, _ = Advertiser.objects.get_or_create(name=item["advertiser"])
                campaign, created = Campaign.objects.update_or_create(
                    advertiser=advertiser,
                    name=item["name"],
                    defaults={
                        "status": status,
                        "description": item.get("description", ""),
                        "keywords": list(item.get("keywords", [])),
                        "languages": list(item.get("languages", [])),
                        "brand_voice": item.get("brand_voice", ""),
                    },
                )
                campaign.promoted_products.set(products)
                campaigns.append(campaign)
                self.stdout.write(f"{'created' if created else 'updated'} {campaign}")
            if o["generate_copy"]:
                for campaign in campaigns:
                    for language in campaign.languages or ["en"]:
                        try:
                            request_copy(campaign=campaign, language=language, n=o["n"])
                            self.stdout.write(f"queued {o['n']} {language} variants for {campaign}")
                        except CreativeRequestError as exc:
                            self.stderr.write(f"{campaign}: {exc}")
