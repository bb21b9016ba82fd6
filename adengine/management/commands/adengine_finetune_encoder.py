"""python manage.py adengine_finetune_encoder [--activate] [--json] ..."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from adengine.ml import finetune
from adengine.ml.encoder import Encoder, EncoderLoadError, get_encoder
from adengine.selectors.evaluation import catalog_vectors, evaluate
from adengine.services import encoders


class Command(BaseCommand):
    help = (
        "Fine-tune the encoder on pairs mined from the shop's behaviour (earlier behaviour -> next "
        "purchase; co-purchased products) with a contrastive loss on the CPU, save a versioned model "
        "folder, and evaluate before and after on held-out shoppers. Switches to it only with --activate."
    )

    def add_arguments(self, parser):
        parser.add_argument("--epochs", type=int, default=1)
        parser.add_argument("--batch-size", type=int, default=16)
        parser.add_argument("--max-pairs", type=int, default=1024, help="Cap on training pairs (CPU time).")
        parser.add_argument("--trainable-layers", type=int, default=4, help="Top transformer layers trained.")
        parser.add_argument("--lr", type=float, default=3e-5)
        parser.add_argument("--held-out", type=float, default=0.2, help="Share of shoppers kept for evaluation.")
        parser.add_argument("--max-eval-users", type=int, default=None)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--activate",
            action="store_true",
            help="Switch to the new model and re-embed, if it is not worse on the held-out shoppers.",
        )
        parser.add_argument("--force", action="store_true", help="With --activate: switch even if it is worse.")
        parser.add_argument("--json", action="store_true", help="Last line: one JSON object.")

    def handle(self, *args, **o):
        quiet = o["verbosity"] < 1
        try:
            base = get_encoder()
        except EncoderLoadError as exc:
            raise CommandError(str(exc)) from exc
        pairs, held = finetune.mine_pairs(held_out_fraction=o["held_out"], seed=o["seed"], max_pairs=o["max_pairs"])
        if len(pairs) < 2:
            raise CommandError("fewer than 2 training pairs: the shop needs purchases with behaviour before them")
        if not held:
            raise CommandError("no held-out shoppers: raise --held-out")
        self.stdout.write(f"{len(pairs)} training pairs; {len(held)} held-out shoppers")
        kwargs = {"shopper_ids": held, "max_users": o["max_eval_users"], "seed": o["seed"]}
        try:
            before = evaluate(encoder=base, in_memory=catalog_vectors(base), **kwargs)
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
        steps = sum(1 for _ in finetune._batches(pairs, o["batch_size"])) * o["epochs"]
        with tqdm(total=steps, desc="fine-tuning", unit=" steps", disable=quiet, file=self.stderr._out) as bar:
            stats = finetune.train(
                encoder=candidate,
                pairs=pairs,
                epochs=o["epochs"],
                batch_size=o["batch_size"],
                lr=o["lr"],
                trainable_layers=o["trainable_layers"],
                seed=o["seed"],
                progress=lambda step, loss: (bar.update(1), bar.set_postfix(loss=f"{loss:.3f}")),
            )
        candidate.model.max_seq_length = base.model.max_seq_length
        candidate.model.save(str(folder))
        after = evaluate(encoder=candidate, in_memory=catalog_vectors(candidate), **kwargs)
        metrics = {
            "before": {k: before[k] for k in ("hr10", "ndcg10", "hr10_popularity", "hr10_random", "users")},
            "after": {k: after[k] for k in ("hr10", "ndcg10", "hr10_popularity", "hr10_random", "users")},
            "training": stats,
        }
        encoders.register(version=version, path=str(folder), base=base.version, metrics=metrics)
        self.stdout.write(f"saved {version} to {folder}")
        self.stdout.write(
            f"held-out HR@10 {before['hr10']:.3f} -> {after['hr10']:.3f}; "
            f"NDCG@10 {before['ndcg10']:.3f} -> {after['ndcg10']:.3f}"
        )
        worse = (after["hr10"], after["ndcg10"]) < (before["hr10"], before["ndcg10"])
        if o["activate"] and worse and not o["force"]:
            self.stdout.write(
                "not switched: the new model is worse on the held-out shoppers (--force to switch anyway)"
            )
        elif o["activate"]:
            encoders.set_active(version=version)
            result = encoders.reembed_all()
            self.stdout.write(
                f"switched to {version}; re-embedded {result['products']} products and {result['refreshed']} shoppers"
            )
        else:
            self.stdout.write(f"not switched; to use it: manage.py adengine_encoder --activate {version}")
        metrics["activated"] = bool(o["activate"] and (o["force"] or not worse))
        if o["json"]:
            self.stdout.write(json.dumps({"version": version, **metrics}, sort_keys=True))
