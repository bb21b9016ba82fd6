"""python manage.py adengine_eval_interests [--json] [--include-bought] [--test-share 0.25] [--max-users N]"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from adengine.management.progress import bar, follow, note
from adengine.ml.encoder import EncoderLoadError, get_encoder
from adengine.selectors.evaluation import evaluate


def _row(name: str, r: dict, mark: str = "") -> str:
    ci = r.get("hr10_ci") or [r.get("hr10", 0.0)] * 2
    return (
        f"{name:<20}{r['hr10']:>7.3f}  [{ci[0]:.3f}, {ci[1]:.3f}]{r['ndcg10']:>9.3f}{r['mrr']:>8.3f}"
        f"{r['coverage']:>10.3f}{mark}"
    )


class Command(BaseCommand):
    help = (
        "Evaluate shopper understanding: hold out each shopper's last order (time split: everything is "
        "fitted on the behaviour before the cut-off), rank the catalog with the hybrid interest model "
        "(weights chosen on the data before the cut-off) and report HR@10, NDCG@10 and MRR with 95 %% "
        "bootstrap intervals and coverage, for the blend, each part alone and the random, popularity, "
        "recent-popularity and bought-together baselines measured on the same shoppers."
    )

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Last line: one JSON object.")
        parser.add_argument(
            "--compare", action="store_true", help="Kept for old scripts: every part is always reported."
        )
        parser.add_argument(
            "--include-bought",
            action="store_true",
            help="Keep products the shopper bought before in the ranking (shops with repeat purchases).",
        )
        parser.add_argument(
            "--test-share", type=float, default=0.25, help="Share of shoppers with an order held out (by time)."
        )
        parser.add_argument("--max-users", type=int, default=None, help="Evaluate a seeded sample of test shoppers.")
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, **opts):
        if not 0 < opts["test_share"] < 1:
            raise CommandError("--test-share must be between 0 and 1")
        if opts["max_users"] is not None and opts["max_users"] < 1:
            raise CommandError("--max-users must be at least 1")
        try:
            encoder = get_encoder()
            with bar(self, opts["verbosity"], desc="choosing the blend: settings tried", unit="settings") as tried:
                result = evaluate(
                    encoder=encoder,
                    max_users=opts["max_users"],
                    seed=opts["seed"],
                    include_bought=opts["include_bought"],
                    test_share=opts["test_share"],
                    progress=lambda msg: note(self, msg) if opts["verbosity"] > 1 else None,
                    grid_progress=follow(tried),
                )
        except (ValueError, EncoderLoadError) as exc:
            raise CommandError(str(exc)) from exc
        for key in [k for k in result if k.startswith("_")]:  # per-shopper hits, for paired comparisons only
            result.pop(key)
        p = result["protocol"]
        self.stdout.write(
            f"test shoppers: {result['users']}  catalog: {result['catalog']}  cut-off: {p['cutoff']}  "
            f"products bought before: {p['bought']}  (encoder {result['encoder']})"
        )
        w = result["weights"]
        self.stdout.write(
            "blend weights (chosen on the behaviour before the cut-off): "
            + ", ".join(f"{k} {v:.1f}" for k, v in w.items())
        )
        self.stdout.write(f"{'':<20}{'HR@10':>7}  {'95 % interval':<16}{'NDCG@10':>9}{'MRR':>8}{'coverage':>10}")
        blend = {
            "hr10": result["hr10"],
            "hr10_ci": [result["hr10_ci_low"], result["hr10_ci_high"]],
            "ndcg10": result["ndcg10"],
            "mrr": result["mrr"],
            "coverage": result["coverage"],
        }
        self.stdout.write(_row("hybrid blend", blend, "  <- used"))
        for name, r in result["components"].items():
            self.stdout.write(_row(f"  {name} alone", r))
        for name, r in result["baselines"].items():
            self.stdout.write(_row(name.replace("_", " "), r))
        pop = result["hr10_popularity"]
        if pop > 0:
            self.stdout.write(f"blend / popularity: {result['hr10'] / pop:.2f}x")
        for line in result["notes"]:
            self.stdout.write(f"note: {line}")
        if opts["json"]:
            self.stdout.write(json.dumps(result, sort_keys=True, default=float))
