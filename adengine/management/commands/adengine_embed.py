"""python manage.py adengine_embed [--products] [--interests] [--rebuild]"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from adengine.adapters import get_adapter
from adengine.management.progress import bar, follow
from adengine.ml.encoder import EncoderLoadError, get_encoder
from adengine.models import InterestModel
from adengine.selectors.shoppers import stale_shoppers
from adengine.services.interest_model import train_interest_model
from adengine.services.interests import mark_all_stale, method_tag, refresh_interests
from adengine.services.products import embed_products


class Command(BaseCommand):
    help = (
        "Embed the catalog and compute stale interest vectors now, with progress bars. --rebuild "
        "re-embeds every product and recomputes every shopper (after a model change)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--products", action="store_true", help="Only product vectors.")
        parser.add_argument("--interests", action="store_true", help="Only interest vectors.")
        parser.add_argument("--rebuild", action="store_true", help="Everything, not only what changed.")
        parser.add_argument(
            "--no-train",
            action="store_true",
            help="Do not train the hybrid interest model (trained here when none is active, or with --rebuild).",
        )

    def handle(self, *args, **opts):
        both = not opts["products"] and not opts["interests"]
        try:
            encoder = get_encoder()
        except EncoderLoadError as exc:
            raise CommandError(str(exc)) from exc
        verbosity = opts["verbosity"]
        if both or opts["products"]:
            total = get_adapter().products().count()
            with bar(self, verbosity, desc="products", total=total, unit="products") as products:
                n = embed_products(force=opts["rebuild"], encoder=encoder, progress=products.update)
            self.stdout.write(
                f"product vectors written: {n} of {total}"
                + (f" (the other {total - n} were current)" if n < total else "")
            )
        if (both or opts["interests"]) and not opts["no_train"]:
            if opts["rebuild"] or not InterestModel.objects.filter(is_active=True).exists():
                with bar(self, verbosity, desc="interest model: settings tried", unit="settings") as tried:
                    result = train_interest_model(encoder=encoder, progress=follow(tried))
                if result["trained"]:
                    w = ", ".join(f"{k} {v:.1f}" for k, v in result["weights"].items())
                    self.stdout.write(f"interest model {result['version']}: weights {w}; {result['decision']}")
                    for note in result["notes"]:
                        self.stdout.write(f"note: {note}")
                else:
                    self.stdout.write(f"interest model not trained: {result['reason']}")
        if both or opts["interests"]:
            if opts["rebuild"]:
                mark_all_stale()
            total = stale_shoppers(tag=method_tag(encoder)).count()
            with bar(self, verbosity, desc="shoppers", total=total, unit="shoppers") as shoppers:
                result = refresh_interests(encoder=encoder, progress=shoppers.update)
            if result.get("skipped"):
                raise CommandError(f"not run: {result['skipped']}")
            self.stdout.write(f"interest vectors written: {result['refreshed']}, cleared: {result['cleared']}")
