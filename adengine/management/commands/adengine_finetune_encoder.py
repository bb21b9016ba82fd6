"""python manage.py adengine_finetune_encoder [--activate [--force]] [--json] ..."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from adengine.management.progress import showing
from adengine.ml import finetune, protocol
from adengine.ml.encoder import Encoder, EncoderLoadError, get_encoder
from adengine.selectors.evaluation import base_params, catalog_vectors, evaluate
from adengine.services import encoders

FIGURES = ("hr10", "ndcg10", "hr10_popularity", "hr10_random", "users")


class Command(BaseCommand):
    help = (
        "Fine-tune the encoder on pairs mined from the training shoppers' behaviour before the evaluation "
        "cut-off (earlier behaviour -> next purchase; co-purchased products; popular products not bought as "
        "hard negatives) with a contrastive loss on the CPU, save a versioned model folder, and evaluate "
        "before and after on the protocol's test shoppers with the blend's weights fixed. Switches to it "
        "only with --activate, and only when the gain is significant (or --force)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--epochs", type=int, default=1)
        parser.add_argument("--batch-size", type=int, default=16)
        parser.add_argument("--max-pairs", type=int, default=1024, help="Cap on training pairs (CPU time).")
        parser.add_argument("--trainable-layers", type=int, default=4, help="Top transformer layers trained.")
        parser.add_argument("--lr", type=float, default=3e-5, help="Peak learning rate (after the warm-up).")
        parser.add_argument("--test-share", type=float, default=0.25, help="The protocol's share of test shoppers.")
        parser.add_argument("--no-hard-negatives", action="store_true", help="In-batch negatives only.")
        parser.add_argument("--no-co-purchase", action="store_true", help="Next-purchase pairs only.")
        parser.add_argument("--max-eval-users", type=int, default=None)
        parser.add_argument("--alpha", type=float, default=0.05, help="Significance level for --activate.")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--activate",
            action="store_true",
            help="Switch to the new model and re-embed, if the blend's gain on the test shoppers is significant.",
        )
        parser.add_argument("--force", action="store_true", help="With --activate: switch whatever the figures say.")
        parser.add_argument("--json", action="store_true", help="Last line: one JSON object.")

    def handle(self, *args, **o):
        quiet = not showing(self, o["verbosity"])  # a terminal, or --verbosity 2
        try:
            base = get_encoder()
            mined = finetune.mine_pairs(
                test_share=o["test_share"],
                seed=o["seed"],
                max_pairs=o["max_pairs"],
                hard_negatives=not o["no_hard_negatives"],
                co_purchase=not o["no_co_purchase"],
            )
        except (EncoderLoadError, protocol.ProtocolError) as exc:
            raise CommandError(str(exc)) from exc
        batches = finetune.plan_batches(mined.pairs, batch_size=o["batch_size"], epochs=o["epochs"], seed=o["seed"])
        if not batches:
            raise CommandError("fewer than 2 training pairs: the shop needs purchases with behaviour before them")
        info = mined.summary()
        self.stdout.write(
            f"{info['pairs']} training pairs ({info['with_negative']} with a hard negative) from "
            f"{info['training_shoppers']} training shoppers before the cut-off {info['cutoff']}; "
            f"{info['test_shoppers']} test shoppers never trained on; {len(batches)} batches"
        )
        kwargs = {
            "shopper_ids": mined.test_shoppers,
            "max_users": o["max_eval_users"],
            "seed": o["seed"],
            "test_share": o["test_share"],
        }
        try:
            before = evaluate(encoder=base, in_memory=catalog_vectors(base), **kwargs)
            weights = before["weights"]
            if before["params"] != base_params().as_dict():
                # given weights run with the base settings: measure the base encoder under them too,
                # so that before and after differ only in the encoder
                before = evaluate(encoder=base, in_memory=catalog_vectors(base), weights=weights, **kwargs)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        version, folder = finetune.new_version_dir()
        candidate = Encoder(
            model=base.location,
            version=version,
            query_prefix=base.query_prefix,
            passage_prefix=base.passage_prefix,
            batch_size=base.batch_size,
        )
        with tqdm(total=len(batches), desc="fine-tuning", unit=" steps", disable=quiet, file=self.stderr._out) as bar:
            stats = finetune.train(
                encoder=candidate,
                batches=batches,
                lr=o["lr"],
                trainable_layers=o["trainable_layers"],
                seed=o["seed"],
                progress=lambda step, loss: (bar.update(1), bar.set_postfix(loss=f"{loss:.3f}")),
            )
        candidate.model.max_seq_length = base.model.max_seq_length
        candidate.model.save(str(folder))
        after = evaluate(encoder=candidate, in_memory=catalog_vectors(candidate), weights=weights, **kwargs)
        significance = finetune.compare(before, after, alpha=o["alpha"], seed=o["seed"])
        metrics = {
            "before": _figures(before),
            "after": _figures(after),
            "training": {**stats, "mined": info},
            "significance": significance,
        }
        encoders.register(version=version, path=str(folder), base=base.version, metrics=metrics)
        self.stdout.write(f"saved {version} to {folder}")
        self._report(before, after, significance)
        activated = False
        if o["activate"] and (significance["significant"] or o["force"]):
            encoders.set_active(version=version)
            result = encoders.reembed_all()
            activated = True
            why = "" if significance["significant"] else " (--force: the gain is not significant)"
            self.stdout.write(
                f"switched to {version}{why}; re-embedded {result['products']} products and "
                f"{result['refreshed']} shoppers"
            )
        elif o["activate"]:
            blend = significance["blend"]
            self.stdout.write(
                f"not switched: the blend's gain is not significant (diff {blend['diff']:+.3f}, paired bootstrap "
                f"p={blend['p_bootstrap']:.3f} >= {o['alpha']}); --force to switch anyway"
            )
        else:
            self.stdout.write(f"not switched; to use it: manage.py adengine_encoder --activate {version}")
        if o["json"]:
            self.stdout.write(json.dumps({"version": version, **metrics, "activated": activated}, sort_keys=True))

    def _report(self, before: dict, after: dict, significance: dict) -> None:
        rows = (("content", before["components"]["content"], after["components"]["content"]), ("blend", before, after))
        self.stdout.write(f"{before['users']} test shoppers; blend weights {before['weights']}")
        for name, b, a in rows:
            cmp = significance[name]
            self.stdout.write(
                f"{name:8} HR@10 {b['hr10']:.3f} -> {a['hr10']:.3f}; NDCG@10 {b['ndcg10']:.3f} -> {a['ndcg10']:.3f}; "
                f"hits {cmp['wins']} won / {cmp['losses']} lost; paired bootstrap p={cmp['p_bootstrap']:.3f}, "
                f"sign test p={cmp['p_sign']:.3f}"
            )


def _figures(result: dict) -> dict:
    return {
        **{k: result[k] for k in FIGURES},
        "content": {k: result["components"]["content"][k] for k in ("hr10", "ndcg10")},
        "weights": result["weights"],
    }
