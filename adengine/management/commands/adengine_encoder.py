"""python manage.py adengine_encoder [--list] [--activate VERSION | --base]"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from adengine.management.progress import bar
from adengine.models import EncoderModel
from adengine.services import encoders


class Command(BaseCommand):
    help = "List encoder versions, or switch to one (re-embedding products and shoppers)."

    def add_arguments(self, parser):
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--activate", metavar="VERSION")
        group.add_argument("--base", action="store_true", help="Switch back to the configured base model.")

    def handle(self, *args, **o):
        if not o["activate"] and not o["base"]:
            for m in EncoderModel.objects.order_by("created_at"):
                before, after = m.metrics.get("before", {}), m.metrics.get("after", {})
                self.stdout.write(
                    f"{'*' if m.is_active else ' '} {m.version}  HR@10 {before.get('hr10', 0):.3f} -> "
                    f"{after.get('hr10', 0):.3f}  {m.path}"
                )
            return
        if o["activate"] and not EncoderModel.objects.filter(version=o["activate"]).exists():
            raise CommandError(f"no encoder version {o['activate']!r}; see adengine_encoder --list")
        encoders.set_active(version=o["activate"])
        bars: dict[str, tqdm] = {}

        def progress(kind: str, n: int) -> None:
            if kind not in bars:
                bars[kind] = bar(self, o["verbosity"], desc=kind, unit="rows")
            bars[kind].update(n)

        result = encoders.reembed_all(progress=progress)
        for shown in bars.values():
            shown.close()
        self.stdout.write(
            f"using {result['encoder']}: {result['products']} products and {result['refreshed']} shoppers re-embedded"
        )
