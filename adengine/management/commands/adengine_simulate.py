"""python manage.py adengine_simulate --days N [--json]"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError
from django.utils.module_loading import import_string

from adengine.conf import settings as ad_settings
from adengine.management.progress import bar, follow
from adengine.selectors.performance import Figures
from adengine.services import simulation


class Command(BaseCommand):
    help = (
        "Drive synthetic shoppers (the host's, with latent interests: ADENGINE['SIMULATION_TRUTH']) through the "
        "real serving, tracking, attribution and strategy code for N simulated days, a third each served by adengine, "
        "by the previous (context-free) policy and uniformly at random among the same eligible ads; report CTR, "
        "conversion rate, ROAS, revenue per 1,000 impressions and the page-relevance share."
    )

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, required=True)
        parser.add_argument("--shoppers", type=int, default=200)
        parser.add_argument("--visits", type=int, default=4, help="Page views per shopper per day.")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--json", action="store_true", help="End with one JSON line.")
        parser.add_argument(
            "--force",
            action="store_true",
            help="Run even though the database has live traffic (it bills the campaigns and splits their serving "
            "while it runs): use a copy of the database instead.",
        )

    def handle(self, *args, **o):
        if o["days"] < 1 or o["shoppers"] < 1 or o["visits"] < 1:
            raise CommandError("--days, --shoppers and --visits must be at least 1")
        path = ad_settings.SIMULATION_TRUTH
        if not path:
            raise CommandError("set ADENGINE['SIMULATION_TRUTH'] to the dotted path of your shop's Truth class")
        try:
            truth = import_string(path)()
        except ImportError as exc:
            raise CommandError(f"SIMULATION_TRUTH {path!r} cannot be imported: {exc}") from exc

        try:
            with bar(self, o["verbosity"], desc=f"simulating {o['days']} days", unit="shopper-days") as days:
                outcome = simulation.run(
                    truth=truth,
                    days=o["days"],
                    shoppers=o["shoppers"],
                    visits=o["visits"],
                    seed=o["seed"],
                    progress=follow(days),
                    force=o["force"],
                )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        rows = outcome.days
        w = self.stdout.write
        w(f"{'day':<12}{'arm':<10}{'impr.':>8}{'clicks':>8}{'CTR':>9}{'conv.':>7}{'CVR':>8}{'ROAS':>8}{'RPM':>8}")
        for r in rows:
            ctr = f"{r.ctr:.2%}" if r.ctr is not None else "-"
            cvr = f"{r.conversion_rate:.1%}" if r.conversion_rate is not None else "-"
            roas = f"{r.roas:.1f}" if r.roas is not None else "-"
            rpm = f"{r.ecpm:.2f}" if r.ecpm is not None else "-"
            w(
                f"{r.day:<12}{r.arm:<10}{r.impressions:>8}{r.clicks:>8}{ctr:>9}{r.conversions:>7}{cvr:>8}{roas:>8}"
                f"{rpm:>8}"
            )
        totals = {}
        for arm in ("adengine", "previous", "random"):
            total = Figures()
            for r in rows:
                if r.arm == arm:
                    for name in ("impressions", "views", "clicks", "conversions", "spend", "revenue"):
                        setattr(total, name, getattr(total, name) + getattr(r, name))
            share = outcome.share(arm)
            totals[arm] = {"ctr": total.ctr or 0.0, "roas": total.roas or 0.0, "rpm": total.ecpm or 0.0,
                           "page_relevance": share}  # fmt: skip
            matched, shown, house = outcome.page_relevance[arm]
            w(
                f"{arm}: CTR {totals[arm]['ctr']:.2%} over {total.impressions} impressions, ROAS "
                f"{totals[arm]['roas']:.2f}, RPM {totals[arm]['rpm']:.2f} (billed per 1,000 impressions); on "
                f"category and product pages {matched} of {shown} sponsored ads fit the page or the shopper's top "
                f"interests" + (f" ({share:.0%})" if share is not None else "") + f", {house} house ads"
            )
        if o["json"]:
            w(
                json.dumps(
                    {
                        "ctr_adengine": totals["adengine"]["ctr"],
                        "ctr_random": totals["random"]["ctr"],
                        "roas_adengine": totals["adengine"]["roas"],
                        "roas_random": totals["random"]["roas"],
                        "days": o["days"],
                        "by_day": [r.__dict__ | {"ctr": r.ctr} for r in rows],
                        "ctr_previous": totals["previous"]["ctr"],
                        "roas_previous": totals["previous"]["roas"],
                        "rpm_adengine": totals["adengine"]["rpm"],
                        "rpm_previous": totals["previous"]["rpm"],
                        "rpm_random": totals["random"]["rpm"],
                        "page_relevance_adengine": totals["adengine"]["page_relevance"],
                        "page_relevance_previous": totals["previous"]["page_relevance"],
                        "page_relevance_random": totals["random"]["page_relevance"],
                        "page_ads": {
                            arm: dict(zip(("relevant", "sponsored", "house"), outcome.page_relevance[arm], strict=True))
                            for arm in totals
                        },  # fmt: skip
                    },
                    default=str,
                )
            )
