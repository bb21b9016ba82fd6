"""python manage.py shop_import --products F --customers F --events F --orders F"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from adengine.adapters import ImportNotSupported
from adengine.management.progress import bar, showing
from adengine.services.imports import ImportFileError, count_rows, run_import


class Command(BaseCommand):
    help = (
        "Import a shop's products, customers, behaviour events and orders from CSV files (formats in "
        "the README). Bad rows are reported with file, line and reason; good rows are loaded; running "
        "it twice changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--products", type=Path)
        parser.add_argument("--customers", type=Path)
        parser.add_argument("--events", type=Path)
        parser.add_argument("--orders", type=Path)
        parser.add_argument("--no-progress", action="store_true", help="Do not draw progress bars.")

    def handle(self, *args, **opts):
        files = {k: opts[k] for k in ("products", "customers", "events", "orders") if opts[k]}
        if not files:
            raise CommandError("Give at least one of --products, --customers, --events, --orders.")
        bars: dict[str, tqdm] = {}
        verbosity = 0 if opts["no_progress"] else opts["verbosity"]

        def progress(kind: str, n: int) -> None:
            if kind not in bars:
                for other in bars.values():
                    other.close()
                total = count_rows(files[kind], kind) if showing(self, verbosity) else None  # (a second read)
                bars[kind] = bar(self, verbosity, desc=kind, total=total, unit=kind)
            bars[kind].update(n)

        try:
            report = run_import(**files, progress=progress)
        except (ImportFileError, ImportNotSupported) as exc:
            raise CommandError(str(exc)) from exc
        finally:
            for each in bars.values():
                each.close()
        for kind in ("products", "customers", "events", "orders", "purchases"):
            if kind in files or (kind == "purchases" and "orders" in files):
                self.stdout.write(
                    f"{kind}: {report.loaded.get(kind, 0)} loaded, {report.unchanged.get(kind, 0)} unchanged"
                )
        for what, n in report.skipped.items():
            self.stdout.write(f"skipped {n} {what}")
        for err in report.errors:
            self.stderr.write(err)
        if report.errors:
            raise CommandError(f"{len(report.errors)} bad row(s), listed above; the good rows were loaded.")
