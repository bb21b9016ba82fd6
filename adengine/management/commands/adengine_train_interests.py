"""python manage.py adengine_train_interests [--force] [--json]"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from adengine.management.progress import bar, follow
from adengine.ml.encoder import EncoderLoadError, get_encoder
from adengine.services.interest_model import train_interest_model


class Command(BaseCommand):
    help = (
        "Train the hybrid interest model now (what beat runs every INTEREST_TRAIN_INTERVAL_SECONDS): fit the "
        "content, collaborative and popularity parts on older behaviour, choose their weights on a later "
        "held-out slice, and switch to it only when it beats the live model (--force: always)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="Switch even if it does not beat the live model.")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--json", action="store_true", help="Last line: one JSON object.")

    def handle(self, *args, **opts):
        try:
            encoder = get_encoder()
            with bar(self, opts["verbosity"], desc="settings tried", unit="settings") as tried:
                result = train_interest_model(
                    encoder=encoder, seed=opts["seed"], force=opts["force"], progress=follow(tried)
                )
        except EncoderLoadError as exc:
            raise CommandError(str(exc)) from exc
        if not result["trained"]:
            raise CommandError(f"not trained: {result['reason']}")
        w = ", ".join(f"{k} {v:.1f}" for k, v in result["weights"].items())
        self.stdout.write(f"{result['version']}: weights {w}; settings {result['params']}")
        for name, r in result["validation"].items():
            self.stdout.write(f"  validation {name:<12} HR@10 {r['hr10']:.3f}  NDCG@10 {r['ndcg10']:.3f}")
        if result.get("live"):
            self.stdout.write(f"  validation {'live model':<12} HR@10 {result['live']['hr10']:.3f}")
        self.stdout.write(result["decision"])
        for note in result["notes"]:
            self.stdout.write(f"note: {note}")
        if opts["json"]:
            self.stdout.write(json.dumps(result, sort_keys=True, default=str))
