"""python manage.py adengine_generate_copy --campaign ID --language zh --n 8"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from adengine.management.progress import bar
from adengine.models import Campaign, Creative, GenerationRequest
from adengine.services.creatives import CreativeRequestError, request_copy, run_request


class Command(BaseCommand):
    help = (
        "Write ad copy for a campaign now (not through the worker) and print what passed the rules "
        "and why the rest did not."
    )

    def add_arguments(self, parser):
        parser.add_argument("--campaign", type=int, required=True)
        parser.add_argument("--language", required=True)
        parser.add_argument("--n", type=int, default=8)
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, **o):
        campaign = Campaign.objects.filter(pk=o["campaign"]).first()
        if campaign is None:
            raise CommandError(f"no campaign with id {o['campaign']}")
        try:
            request = request_copy(campaign=campaign, language=o["language"], n=o["n"], seed=o["seed"], enqueue=False)
        except CreativeRequestError as exc:
            raise CommandError(str(exc)) from exc
        with bar(self, o["verbosity"], desc=f"writing {o['language']} copy", total=o["n"], unit="variants") as variants:
            request = run_request(str(request.pk), progress=lambda done: variants.update(done - variants.n))
        if request.status != GenerationRequest.Status.DONE:
            raise CommandError(f"generation failed: {request.error}")
        assets = Creative.objects.filter(request=request).order_by("asset_type", "-score")
        self.stdout.write(f"{campaign} [{o['language']}] by {request.model_name}: {request.stats}")
        self.stdout.write("ready for approval (passed every rule), best audience fit first:")
        for c in assets.filter(passes_rules=True):
            self.stdout.write(f"  {c.asset_type:<12} {c.score or 0:6.3f}  {c.text}")
        self.stdout.write("rejected:")
        for c in assets.filter(passes_rules=False):
            self.stdout.write(f"  {c.asset_type:<12} {c.text!r}: {'; '.join(c.rejection_reasons)}")
