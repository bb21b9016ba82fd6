"""python manage.py adengine_eval_interests [--json] [--compare] [--max-users N]"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from adengine.ml.encoder import EncoderLoadError, get_encoder
from adengine.selectors.evaluation import evaluate


class Command(BaseCommand):
    help = (
        "Hold out each shopper's last purchase, build interest vectors from the behaviour before it, "
        "retrieve products by pgvector nearest-neighbour search and report hit rate and NDCG at 10 "
        "against global popularity and random, measured in the same run."
    )

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Last line: one JSON object.")
        parser.add_argument(
            "--compare",
            action="store_true",
            help="Also measure the text, mean and blend methods (several blend weights).",
        )
        parser.add_argument("--max-users", type=int, default=None, help="Evaluate a seeded sample of shoppers.")
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, **opts):
        try:
            encoder = get_encoder()
            result = evaluate(
                encoder=encoder,
                methods=["text", "mean", "blend"] if opts["compare"] else None,
                text_weights=[0.1, 0.2, 0.3, 0.5, 0.7] if opts["compare"] else None,
                max_users=opts["max_users"],
                seed=opts["seed"],
                progress=lambda msg: self.stderr.write(msg) if opts["verbosity"] > 1 else None,
            )
        except (ValueError, EncoderLoadError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"shoppers evaluated: {result['users']}  (encoder {result['encoder']})")
        self.stdout.write(f"{'method':<16}{'HR@10':>8}{'NDCG@10':>10}")
        for name, r in result["methods"].items():
            mark = " <- configured" if name == result["method"] else ""
            self.stdout.write(f"{name:<16}{r['hr10']:>8.3f}{r['ndcg10']:>10.3f}{mark}")
        self.stdout.write(f"{'popularity':<16}{result['hr10_popularity']:>8.3f}{result['ndcg10_popularity']:>10.3f}")
        self.stdout.write(f"{'random':<16}{result['hr10_random']:>8.3f}{result['ndcg10_random']:>10.3f}")
        if opts["json"]:
            self.stdout.write(json.dumps(result, sort_keys=True))
