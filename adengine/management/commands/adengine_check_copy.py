"""python manage.py adengine_check_copy --language en|zh [--campaign ID] [--asset-type ...] TEXT..."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from adengine.conf import settings as ad_settings
from adengine.ml import compliance
from adengine.models import Campaign
from adengine.services.creatives import check_text, languages, rule_inputs


class Command(BaseCommand):
    help = (
        "Check ad copy against adengine's rules (the advertising law's absolute terms, claims grounded in the "
        "campaign's facts, repetition, fragments, script, display width, contact details ...): prints each text's "
        "verdict with every reason, and exits 1 when any text is rejected -- for marketers, and for a shop's CI on "
        "hand-written copy. Without --campaign the rules that need a campaign (keywords, grounded claims) are "
        "skipped."
    )

    def add_arguments(self, parser):
        parser.add_argument("texts", nargs="+", metavar="TEXT")
        parser.add_argument("--language", required=True)
        parser.add_argument("--campaign", type=int, help="Campaign id: its keywords, products and facts apply.")
        parser.add_argument(
            "--asset-type",
            choices=["auto", "headline", "description"],
            default="auto",
            help="auto: a headline when it fits the headline length, else a description.",
        )
        parser.add_argument(
            "--generated", action="store_true", help="Judge as model-written copy (no prices or discounts at all)."
        )

    def handle(self, *args, **o):
        language = o["language"]
        if language not in languages():
            raise CommandError(f"unknown language {language!r}; known: {', '.join(languages())}")
        rule_set = compliance.rules(ad_settings.COMPLIANCE)
        campaign = None
        if o["campaign"] is not None:
            campaign = Campaign.objects.filter(pk=o["campaign"]).select_related("advertiser").first()
            if campaign is None:
                raise CommandError(f"no campaign {o['campaign']}")
        inputs = rule_inputs(campaign, language)
        limit = (rule_set["MAX_LENGTH"].get(language) or rule_set["MAX_LENGTH"]["en"])["headline"]
        rejected = 0
        for raw in o["texts"]:
            text = compliance.normalise(raw)
            asset_type = o["asset_type"]
            if asset_type == "auto":
                asset_type = "headline" if compliance.display_length(text) <= limit else "description"
            verdicts = check_text(
                text,
                inputs=inputs,
                asset_type=asset_type,
                language=language,
                rule_set=rule_set,
                generated=o["generated"],
            )
            ok = compliance.passed(verdicts)
            rejected += not ok
            self.stdout.write(f"{'PASS  ' if ok else 'REJECT'} {asset_type:<11} {text}")
            for v in verdicts:
                if not v.passed:
                    self.stdout.write(f"    {v.rule}: {v.reason}")
                elif v.rule == "grounded" and v.reason:
                    self.stdout.write(f"    {v.reason}")
        if rejected:
            raise CommandError(f"{rejected} of {len(o['texts'])} text(s) rejected", returncode=1)
