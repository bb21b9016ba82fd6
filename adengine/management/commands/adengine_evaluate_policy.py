"""python manage.py adengine_evaluate_policy --obd PATH --campaign all [--json]"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from django.core.management.base import BaseCommand, CommandError

from adengine.conf import settings as ad_settings
from adengine.management.progress import bar
from adengine.ope import ESTIMATORS, LogError, compare, evaluate
from adengine.selectors.obd import DatasetError, ObdLog, read
from adengine.selectors.obd_context import ContextError, compare_predictions, fit_click_model, thompson_probabilities
from adengine.serving.learning import flat_prior, posteriors
from adengine.serving.policy import slate_probabilities

POSITIONS = 3
STAGES = (
    "reading the logs",
    "learning the policy",
    "estimating its CTR",
    "checking the estimators on BTS",
    "the contextual policy",
)
CONTEXT_ESTIMATORS = ("ipw", "snipw", "dr")


def _finite(x):
    """JSON-safe: NaN and infinities become null, recursively."""
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, float) and not np.isfinite(x):
        return None
    return x


def contextual_evaluation(
    train: ObdLog, test: ObdLog, context_free: np.ndarray, q_hat: np.ndarray, rng, *, draws, bootstrap, seed
) -> dict:
    """The contextual Thompson policy (Bayesian logistic click model on the user features, the user-item
    affinity, the item and the position; see ``selectors.obd_context``) learnt on ``train`` and evaluated on
    ``test`` beside the context-free policy's probabilities ``context_free`` (records, items); and both click
    models' predictions on ``test``."""
    epsilon = float(ad_settings.SERVING_EXPLORATION)
    item_only = fit_click_model(train, contextual=False)
    model = fit_click_model(train, contextual=True, item_precision=item_only.item_precision)
    rows = np.arange(len(test))
    probs = thompson_probabilities(model, test, rng, draws=draws, epsilon=epsilon)[rows, test.position]
    item_probs = thompson_probabilities(item_only, test, rng, draws=draws, epsilon=epsilon)[rows, test.position]
    log = test.bandit_log()
    kw = {"q_hat": q_hat, "estimators": CONTEXT_ESTIMATORS, "n_bootstrap": bootstrap, "seed": seed}
    result = evaluate(log, probs, **kw)
    item_result = evaluate(log, item_probs, **kw)
    versus = compare(log, probs, context_free, **kw)
    return {
        "contextual": {
            "estimates": {k: v.as_dict() for k, v in result.items()},
            "features": model.n_features,
            "user_levels": len(model.encoder.levels),
            "min_level_count": model.encoder.min_count,
            "training_records": len(train),
            "training_clicks": int(train.click.sum()),
            "item_precision": model.item_precision,
            "context_precision": model.context_precision,
            "context_precision_heldout_loglik": {str(k): v for k, v in model.cv.items()},
            "item_precision_heldout_loglik": {str(k): v for k, v in item_only.cv.items()},
            "draws": draws,
        },
        "contextual_vs_context_free": {
            k: {
                "ratio": v["ratio"].value,
                "ratio_ci_low": v["ratio"].ci_low,
                "ratio_ci_high": v["ratio"].ci_high,
                "difference": v["difference"].value,
                "difference_ci_low": v["difference"].ci_low,
                "difference_ci_high": v["difference"].ci_high,
            }
            for k, v in versus.items()
        },
        "item_only_model_policy": {k: v.as_dict() for k, v in item_result.items()},
        "click_model_heldout": compare_predictions(
            test.click.astype(np.float64),
            model.predict(test),
            item_only.predict(test),
            n_bootstrap=bootstrap,
            seed=seed,
        ),
    }


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


def context_free_probabilities(train: ObdLog, rng: np.random.Generator, draws: int) -> np.ndarray:
    """adengine's context-free policy learnt on ``train``: the live strategy's posterior update from its
    impressions and clicks (a flat Beta prior at the training CTR), then the serving policy's probabilities of
    putting each item at each of the three positions (Thompson sampling with its uniform exploration)."""
    shown = np.bincount(train.item, minlength=train.n_items)
    clicks = np.bincount(train.item, weights=train.click, minlength=train.n_items)
    base = max(float(train.click.mean()), 1e-4)
    a0, b0 = flat_prior(train.n_items, base_ctr=base, strength=float(ad_settings.SERVING_PRIOR_STRENGTH))
    alpha, beta = posteriors(a0, b0, shown, clicks)
    probs = slate_probabilities(
        rng,
        alpha=alpha,
        beta=beta,
        weight=np.ones(train.n_items),
        group=np.arange(train.n_items),
        n=POSITIONS,
        epsilon=float(ad_settings.SERVING_EXPLORATION),
        draws=draws,
    )
    return probs / probs.sum(axis=1, keepdims=True)


def bts_probabilities(root: Path, campaign: str, n_items: int, rng: np.random.Generator, draws: int) -> np.ndarray:
    """The logged BTS policy's probability of putting each item at each position, from its own Beta priors
    (``prior_bts.yaml``): Thompson sampling without exploration, as it ran."""
    import yaml

    path = Path(root) / "prior_bts.yaml"
    if not path.is_file():
        raise DatasetError(f"{path}: no such file (the BTS policy's priors; the OBD sample ships it)")
    try:
        prior = yaml.safe_load(path.read_text())[campaign]
        alpha, beta = np.asarray(prior["alpha"], float), np.asarray(prior["beta"], float)
    except (KeyError, TypeError, ValueError, yaml.YAMLError) as exc:
        raise DatasetError(f"{path}: no alpha and beta lists for campaign {campaign!r} ({exc})") from None
    if len(alpha) != n_items or len(beta) != n_items:
        raise DatasetError(f"{path}: {len(alpha)} priors for campaign {campaign!r}, which has {n_items} items")
    probs = slate_probabilities(
        rng, alpha=alpha, beta=beta, weight=np.ones(n_items), group=np.arange(n_items), n=POSITIONS, epsilon=0.0,
        draws=draws,
    )  # fmt: skip
    return probs / probs.sum(axis=1, keepdims=True)


class Command(BaseCommand):
    help = (
        "Evaluate adengine's strategy offline on the Open Bandit Dataset: learn it (the serving policy's "
        "Thompson sampling with Beta posteriors, the same code as the live strategy) on the earlier half of "
        "the Random policy's log, and estimate its CTR on the later half with IPW, SNIPW, DM and DR and "
        "bootstrap 95 % intervals; print it beside Random's and the logged BTS policy's observed CTR. Then the "
        "contextual policy (Thompson sampling over a Bayesian logistic click model of the user features, the "
        "user-item affinity, the item and the position) learnt and evaluated the same way, beside it."
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
        with bar(self, o["verbosity"], desc="evaluating", total=len(STAGES), unit="stages") as stages:
            return self.evaluate(o, stages)

    def evaluate(self, o, stages) -> None:
        begun: list[str] = []

        def next_stage() -> None:  # the stage before is done; name the one that starts
            if begun:
                stages.update(1)
            begun.append(STAGES[len(begun)])
            stages.set_description(begun[-1])

        next_stage()
        try:
            random_log = read(o["obd"], policy="random", campaign=o["campaign"])
            bts_log = read(o["obd"], policy="bts", campaign=o["campaign"])
        except DatasetError as exc:
            raise CommandError(str(exc)) from None
        if random_log.n_items < POSITIONS:
            raise CommandError(
                f"{o['obd']}: campaign {o['campaign']!r} has {random_log.n_items} item(s); the evaluation needs at "
                f"least {POSITIONS}, one per position"
            )
        train, test = random_log.split(0.5)
        _, bts_test = bts_log.split(0.5)
        rng = np.random.default_rng(o["seed"])

        next_stage()
        probs = context_free_probabilities(train, rng, o["draws"])
        next_stage()
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
        # are the estimators right? The paper's check: estimate the BTS policy's CTR from the Random log with
        # BTS's own action probabilities, and compare with what BTS observed on-policy in the same period
        next_stage()
        try:
            bts_probs = bts_probabilities(o["obd"], o["campaign"], train.n_items, rng, o["draws"])
            check = evaluate(
                test.bandit_log(),
                bts_probs[test.position],
                q_hat=reward_table(train)[test.position],
                n_bootstrap=o["bootstrap"],
                seed=o["seed"],
            )
        except (DatasetError, LogError) as exc:
            raise CommandError(str(exc)) from None
        relative_error = {k: abs(v.value - bts_ctr) / bts_ctr if bts_ctr else None for k, v in check.items()}
        # the contextual model against the context-free policy, on the same later half
        next_stage()
        try:
            context = contextual_evaluation(
                train, test, probs[test.position], reward_table(train)[test.position], rng, draws=o["draws"],
                bootstrap=o["bootstrap"], seed=o["seed"],
            )  # fmt: skip
        except ContextError as exc:
            context = dict.fromkeys(
                ("contextual", "contextual_vs_context_free", "item_only_model_policy", "click_model_heldout")
            )
            context_missing = str(exc)
        except LogError as exc:
            raise CommandError(f"{o['obd']}: {exc}") from None
        else:
            context_missing = None
        stages.update(1)
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
        w(f"  check: BTS estimated from the Random log against BTS observed ({bts_ctr:.4%}):")
        for name, est in check.items():
            covered = "covers" if est.ci_low <= bts_ctr <= est.ci_high else "misses"
            w(
                f"    {name.upper():5} {est.value:.4%}   95% CI [{est.ci_low:.4%}, {est.ci_high:.4%}] ({covered} the "
                f"observed)   relative error {relative_error[name]:.2f}"
            )
        if context_missing:
            w(f"  contextual model: not evaluated ({context_missing})")
        else:
            c = context["contextual"]
            w(
                f"  contextual Thompson policy ({c['features']} features: {c['user_levels']} user levels with at least "
                f"{c['min_level_count']} training records; item precision {c['item_precision']:g}, context "
                f"precision {c['context_precision']:g} by held-out log-likelihood on the training half):"
            )
            for name, est in c["estimates"].items():
                v = context["contextual_vs_context_free"][name]
                w(
                    f"    {name.upper():5} {est['value']:.4%}   95% CI [{est['ci_low']:.4%}, {est['ci_high']:.4%}]   "
                    f"x{v['ratio']:.2f} context-free (paired 95% CI "
                    f"[{v['ratio_ci_low']:.2f}, {v['ratio_ci_high']:.2f}])"
                )
            h = context["click_model_heldout"]
            for name in ("log_loss", "auc"):
                d = h[f"{name}_difference"]
                if d["value"] is None:
                    continue
                w(
                    f"    held-out {name.replace('_', '-')}: contextual {h['contextual'][name]:.5f}, item-only "
                    f"{h['item_only'][name]:.5f}, difference {d['value']:+.2e} "
                    f"[{d['ci_low']:+.2e}, {d['ci_high']:+.2e}]"
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
                        "ope_relative_error": relative_error,
                        "ope_check": {
                            "bts_observed_ctr": bts_ctr,
                            "estimates": {k: v.as_dict() for k, v in check.items()},
                            "covered": {k: v.ci_low <= bts_ctr <= v.ci_high for k, v in check.items()},
                        },
                        "seed": o["seed"],
                        **_finite(context),
                    }
                )
            )
