"""python manage.py adengine_evaluate_policy --obd PATH --campaign all [--json]"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from django.core.management.base import BaseCommand, CommandError

from adengine.conf import settings as ad_settings
from adengine.ope import ESTIMATORS, LogError, evaluate
from adengine.selectors.obd import DatasetError, ObdLog, read
from adengine.serving.learning import flat_prior, posteriors
from adengine.serving.policy import slate_probabilities

POSITIONS = 3


def reward_table(train: ObdLog, *, prior: float = 20.0) -> np.ndarray:
    """Click rate of each item at each position on the training part, shrunk towards the position's rate."""
    table = np.zeros((POSITIONS, train.n_items))
    for pos in range(POSITIONS):
        at = train.position == pos
        base = float(train.click[at].mean()) if at.any() else float(train.click.mean())
        clicks = np.bincount(train.item[at], weights=train.click[at], minlength=train.n_items)
        shown = np.bincount(train.item[at], minlength=train.n_items)
        table[pos] = (clicks + prior * base) / (shown + prior)
    return table


class Command(BaseCommand):
    help = (
        "Evaluate adengine's strategy offline on the Open Bandit Dataset: learn it (the serving policy's "
        "Thompson sampling with Beta posteriors, the same code as the live strategy) on the earlier half of "
        "the Random policy's log, and estimate its CTR on the later half with IPW, SNIPW, DM and DR and "
        "bootstrap 95 % intervals; print it beside Random's and the logged BTS policy's observed CTR."
    )

    def add_arguments(self, parser):
        parser.add_argument("--obd", type=Path, required=True, help="The dataset's folder (random/, bts/).")
        parser.add_argument("--campaign", default="all", choices=["all", "men", "women"])
        parser.add_argument("--estimator", default="snipw", choices=ESTIMATORS, help="The one reported as adengine's.")
        parser.add_argument("--bootstrap", type=int, default=1000)
        parser.add_argument("--draws", type=int, default=20000, help="Thompson draws for the policy's probabilities.")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--json", action="store_true", help="End with one JSON line.")

    def handle(self, *args, **o):
        try:
            random_log = read(o["obd"], policy="random", campaign=o["campaign"])
            bts_log = read(o["obd"], policy="bts", campaign=o["campaign"])
        except DatasetError as exc:
            raise CommandError(str(exc)) from None
        train, test = random_log.split(0.5)
        _, bts_test = bts_log.split(0.5)
        rng = np.random.default_rng(o["seed"])

        # learn: the live strategy's posterior update from the training half's impressions and clicks
        shown = np.bincount(train.item, minlength=train.n_items)
        clicks = np.bincount(train.item, weights=train.click, minlength=train.n_items)
        base = max(float(train.click.mean()), 1e-4)
        a0, b0 = flat_prior(train.n_items, base_ctr=base, strength=float(ad_settings.SERVING_PRIOR_STRENGTH))
        alpha, beta = posteriors(a0, b0, shown, clicks)
        # act: the serving policy's probabilities of putting each item at each of the three positions
        probs = slate_probabilities(
            rng,
            alpha=alpha,
            beta=beta,
            weight=np.ones(train.n_items),
            group=np.arange(train.n_items),
            n=POSITIONS,
            epsilon=float(ad_settings.SERVING_EXPLORATION),
            draws=o["draws"],
        )
        probs /= probs.sum(axis=1, keepdims=True)
        try:
            log = test.bandit_log()
            result = evaluate(
                log,
                probs[test.position],
                q_hat=reward_table(train)[test.position],
                n_bootstrap=o["bootstrap"],
                seed=o["seed"],
            )
        except LogError as exc:
            raise CommandError(f"{o['obd']}: {exc}") from None

        random_ctr = float(test.click.mean())
        bts_ctr = float(bts_test.click.mean())
        chosen = result[o["estimator"]]
        w = self.stdout.write
        w(
            f"Open Bandit Dataset, campaign '{o['campaign']}': trained on {len(train):,} Random records "
            f"({int(train.click.sum())} clicks), evaluated on the later {len(test):,} "
            f"({int(test.click.sum())} clicks)"
        )
        w(f"  Random, observed CTR (later half):      {random_ctr:.4%}")
        w(f"  BTS (logged), observed CTR (later half): {bts_ctr:.4%}   x{bts_ctr / random_ctr:.2f} Random")
        for name, est in result.items():
            w(
                f"  adengine, {name.upper():5} estimate:           {est.value:.4%}   95% CI [{est.ci_low:.4%}, "
                f"{est.ci_high:.4%}]   x{est.value / random_ctr:.2f} Random"
            )
        if o["json"]:
            w(
                json.dumps(
                    {
                        "random_ctr": random_ctr,
                        "bts_ctr": bts_ctr,
                        "adengine_ctr": chosen.value,
                        "adengine_ci_low": chosen.ci_low,
                        "adengine_ci_high": chosen.ci_high,
                        "lift_vs_random": chosen.value / random_ctr if random_ctr else None,
                        "estimator": chosen.estimator,
                        "estimates": {k: v.as_dict() for k, v in result.items()},
                        "seed": o["seed"],
                    }
                )
            )
