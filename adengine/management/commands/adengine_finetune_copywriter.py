"""python manage.py adengine_finetune_copywriter --pairs FILE.jsonl [...] [--activate] [--json]"""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from adengine.conf import settings as ad_settings
from adengine.management.progress import showing
from adengine.ml import copy_pairs, copywriter_finetune, prompts
from adengine.ml.copywriter import CopywriterError, LocalCopywriter, resolve_local_model
from adengine.models import CopywriterModel
from adengine.services import copywriters
from adengine.services.creatives import shop_brands


class Command(BaseCommand):
    help = (
        "Fine-tune the local copywriter (a LoRA adapter, peft, on the CPU) on curated product -> headline/"
        "description pairs, keep the epoch with the lowest loss on held-out products, then write copy for the "
        "held-out products with the base model and the fine-tune and judge both by the advertising rules. The "
        "fine-tune is registered as a copywriter version, and with --activate it writes the shop's copy only when "
        "its share of variants passing every rule is higher with a paired bootstrap interval above zero (or "
        "--force). --list shows the versions; --use VERSION / --use base switches by hand."
    )

    def add_arguments(self, parser):
        parser.add_argument("--pairs", nargs="+", type=Path, help="Curated pairs (.jsonl, see adengine.ml.copy_pairs).")
        parser.add_argument("--held-out", type=float, default=0.2, help="Share of products held out (by SKU hash).")
        parser.add_argument("--max-epochs", type=int, default=4, help="Upper bound; the held-out loss picks the epoch.")
        parser.add_argument("--lr", type=float, default=3e-4)
        parser.add_argument("--rank", type=int, default=16, help="LoRA rank.")
        parser.add_argument("--batch-size", type=int, default=8)
        parser.add_argument("--max-minutes", type=float, default=None, help="Stop training after this long.")
        parser.add_argument("--variants", type=int, default=4, help="Completions per held-out pair and model.")
        parser.add_argument("--max-eval-pairs", type=int, default=60, help="Held-out pairs written for (CPU time).")
        parser.add_argument(
            "--adapter", type=Path, help="Evaluate and register an adapter trained elsewhere instead of training."
        )
        parser.add_argument("--activate", action="store_true", help="Switch to it if it is better on held-out pairs.")
        parser.add_argument("--force", action="store_true", help="With --activate: switch whatever the figures say.")
        parser.add_argument("--list", action="store_true", help="List the copywriter versions and exit.")
        parser.add_argument("--use", metavar="VERSION", help="Switch to VERSION ('base': the configured model).")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--json", action="store_true", help="Last line: one JSON object.")

    def handle(self, *args, **o):
        if o["list"]:
            for m in CopywriterModel.objects.all():
                self.stdout.write(f"{m}  base={m.base}  {m.created_at:%Y-%m-%d %H:%M}  {m.decision}")
            return
        if o["use"]:
            return self._use(o["use"])
        cfg = ad_settings.COPYWRITER
        if cfg["BACKEND"] != "local":
            raise CommandError(
                "fine-tuning needs ADENGINE['COPYWRITER']['BACKEND'] = 'local' (a model on this machine)"
            )
        if not o["pairs"]:
            raise CommandError("--pairs FILE.jsonl is required (e.g. fixtures/copywriter/pairs_*.jsonl)")
        if not 0 < o["held_out"] < 1:
            raise CommandError("--held-out must be between 0 and 1")
        try:
            pairs = copy_pairs.load(o["pairs"])
        except (copy_pairs.PairError, OSError) as exc:
            raise CommandError(str(exc)) from exc
        unknown = sorted({p.language for p in pairs} - set(prompts.templates(ad_settings.PROMPT_TEMPLATES)))
        if unknown:
            raise CommandError(f"pairs in languages without a prompt template: {', '.join(unknown)}")
        train = [p for p in pairs if not p.held_out(o["held_out"])]
        held = [p for p in pairs if p.held_out(o["held_out"])]
        if len(train) < 8 or not held:
            raise CommandError(
                f"{len(pairs)} pairs give {len(train)} for training and {len(held)} held out: "
                "at least 8 and 1 are needed"
            )
        quiet = not showing(self, o["verbosity"])  # a terminal, or --verbosity 2
        spec = str(cfg["MODEL"])
        try:
            base_folder = resolve_local_model(spec)
        except CopywriterError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"{len(pairs)} pairs: {len(train)} for training, {len(held)} about {len({p.sku for p in held})} "
            f"held-out products"
        )
        if o["adapter"]:
            folder = o["adapter"].expanduser().resolve()
            if not (folder / "adapter_config.json").exists():
                raise CommandError(f"{folder} is not a LoRA adapter folder (no adapter_config.json)")
            version = folder.name
            record_file = folder / "training.json"
            training = json.loads(record_file.read_text()) if record_file.exists() else {"trained": "elsewhere"}
        else:
            version, folder = copywriter_finetune.new_version_dir()
            steps = (len(train) + o["batch_size"] - 1) // o["batch_size"] * o["max_epochs"]
            with tqdm(total=steps, desc="fine-tuning", unit=" steps", disable=quiet, file=self.stderr._out) as bar:
                training = copywriter_finetune.train(
                    base_folder=base_folder,
                    train_pairs=train,
                    val_pairs=held,
                    out=folder,
                    template_set=prompts.templates(ad_settings.PROMPT_TEMPLATES),
                    max_epochs=o["max_epochs"],
                    lr=o["lr"],
                    rank=o["rank"],
                    batch_size=o["batch_size"],
                    max_minutes=o["max_minutes"],
                    seed=o["seed"],
                    progress=lambda step, total, loss: (bar.update(1), bar.set_postfix(loss=f"{loss:.3f}")),
                )
            self.stdout.write(
                f"saved {version} to {folder}: epoch {training['best_epoch']} of {training['epochs_run']} "
                f"({training['stopped']}), held-out loss {training['heldout_loss_before']:.3f} -> "
                f"{training['heldout_loss_after']:.3f} nats per token"
            )
        evaluation = self._evaluate(spec, folder, version, held[: o["max_eval_pairs"]], o, quiet)
        verdict = evaluation["comparison"]
        decision = (
            f"better on {verdict['pairs']} held-out pairs: {evaluation['candidate']['all']['pass_share']:.0%} of "
            f"variants pass every rule against {evaluation['base']['all']['pass_share']:.0%} for the base "
            f"(difference {verdict['difference']:+.0%}, {verdict['confidence']:.0%} interval "
            f"{verdict['low']:+.0%} to {verdict['high']:+.0%})"
            if verdict["better"]
            else f"not shown better on {verdict['pairs']} held-out pairs: "
            f"{evaluation['candidate']['all']['pass_share']:.0%} of variants pass every rule against "
            f"{evaluation['base']['all']['pass_share']:.0%} for the base (interval {verdict['low']:+.0%} to "
            f"{verdict['high']:+.0%})"
        )
        activate = o["activate"] and (verdict["better"] or o["force"])
        if o["activate"] and not verdict["better"] and o["force"]:
            decision += "; activated by hand (--force)"
        elif activate:
            decision += "; activated"
        elif verdict["better"]:
            decision += "; not activated (run with --activate, or --use " + version + ")"
        else:
            decision += "; the base model stays"
        model = copywriters.register(
            version=version,
            path=str(folder),
            base=spec,
            metrics={"training": training, **evaluation},
            decision=decision,
        )
        if activate:
            copywriters.set_active(version=model.version)
        self.stdout.write(f"{version}: {decision}")
        if o["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "version": version,
                        "path": str(folder),
                        "activated": activate,
                        "decision": decision,
                        "training": training,
                        "base": evaluation["base"],
                        "candidate": evaluation["candidate"],
                        "comparison": verdict,
                    }
                )
            )

    def _evaluate(self, spec, folder, version, held, o, quiet) -> dict:
        cfg = ad_settings.COPYWRITER
        brands = shop_brands()
        results = {}
        for name, adapter in (("base", None), ("candidate", folder)):
            writer = LocalCopywriter(
                spec, threads=cfg.get("THREADS"), quantize=cfg.get("QUANTIZE"), adapter=adapter, version=version
            )
            if adapter is None:
                writer.version = ""
            with tqdm(total=len(held), desc=f"writing ({name})", disable=quiet, file=self.stderr._out) as bar:
                written, seconds = copywriters.timed(
                    lambda writer=writer, bar=bar: copywriters.write(
                        writer,
                        held,
                        variants=o["variants"],
                        seed=o["seed"],
                        shop_brands=brands,
                        progress=lambda n, bar=bar: bar.update(1),
                    )
                )
            results[name] = (written, seconds)
            figures = copywriters.summary(written)["all"]
            self.stdout.write(
                f"{name}: {figures['passed']} of {figures['variants']} variants pass every rule "
                f"({figures['pass_share']:.0%}), distinct-2 {figures['distinct_2']:.2f}, {seconds:.0f} s"
            )
        comparison = copywriters.compare(results["base"][0], results["candidate"][0], seed=o["seed"])
        return {
            "base": {**copywriters.summary(results["base"][0]), "seconds": results["base"][1]},
            "candidate": {**copywriters.summary(results["candidate"][0]), "seconds": results["candidate"][1]},
            "comparison": comparison,
            "heldout_pairs": len(held),
            "variants_per_pair": o["variants"],
        }

    def _use(self, version: str) -> None:
        if version == "base":
            copywriters.set_active(version=None)
            self.stdout.write("the configured base model writes the copy")
            return
        if not CopywriterModel.objects.filter(version=version).exists():
            known = ", ".join(CopywriterModel.objects.values_list("version", flat=True)) or "none"
            raise CommandError(f"no copywriter version {version!r}; known: {known}")
        copywriters.set_active(version=version)
        self.stdout.write(f"{version} writes the copy")
