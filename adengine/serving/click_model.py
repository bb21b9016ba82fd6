"""The contextual click model: a Bayesian logistic regression of a click on what was known at the decision,
fitted by the strategy update (Laplace approximation: the MAP weights and the inverse Hessian as their
covariance, as in Chapelle & Li's "An Empirical Evaluation of Thompson Sampling"), served by Thompson sampling
over its posterior.

Pure numpy, free of Django: the live engine, the impression log's propensity estimate, the strategy's fit and
its off-policy gate, the OBD evaluation and the benchmarks run this same code.

The features of one (decision, ad) pair, each centred so that the prior means something:

- per ad (``ARM_FEATURES``): ``asset`` -- the logit of the headline's own CTR posterior (its history; a draw
  from it when sampling, so new assets are still tried) less the logit of ``SERVING_BASE_CTR``; ``relevance``
  -- the campaign's relevance to page and shopper (0..1, the larger of the two) less 0.5; ``interest`` -- the
  shopper's standardised interest fit less 0.5 (0 when not personalised); ``page_fit`` -- the fit to the page
  (its product 1, keywords 0.9, category 0.8, none 0) less 0.5;
- per decision: a bias, ``personalised``, the kind of page, the position, a language other than the shop's
  default, the hour of the day (sine and cosine) and the placement.

The prior is today's context-free policy: weight 1 on ``asset``, ``SERVING_RELEVANCE_WEIGHT`` on
``relevance`` and the base rate's logit as bias, everything else 0 -- so a model fitted on few clicks serves
as the old policy did, and data move it from there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

ARM_FEATURES = ("asset", "relevance", "interest", "page_fit")
PAGE_KINDS = ("category", "product", "search")  # one-hot; home and other pages are the baseline
CONST_FEATURES = (
    "bias",
    "personalised",
    *(f"page:{k}" for k in PAGE_KINDS),
    "position:2",
    "position:3+",
    "language:other",
    "hour:sin",
    "hour:cos",
)
N_ARM = len(ARM_FEATURES)
LOGIT_CLIP = 1e-4


def logit(p) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), LOGIT_CLIP, 1.0 - LOGIT_CLIP)
    return np.log(p) - np.log1p(-p)


def sigmoid(z) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=np.float64)))


def feature_names(placements: tuple[int, ...]) -> tuple[str, ...]:
    return (*ARM_FEATURES, *CONST_FEATURES, *(f"placement:{p}" for p in placements))


def const_features(
    placements: tuple[int, ...],
    *,
    personalised,
    kind,
    position,
    other_language,
    hour,
    placement_id,
) -> np.ndarray:
    """The per-decision features, one row per record: (n, len(CONST_FEATURES) + len(placements)).

    Every argument is a scalar or an array of n records; ``kind`` is the page kind (``context.page_kind``),
    ``position`` 0-based, ``hour`` the local hour (0..24, fractions allowed).
    """
    personalised = np.atleast_1d(np.asarray(personalised, dtype=np.float64))
    n = max(len(np.atleast_1d(x)) for x in (personalised, kind, position, other_language, hour, placement_id))
    out = np.zeros((n, len(CONST_FEATURES) + len(placements)))
    out[:, 0] = 1.0
    out[:, 1] = personalised
    kind = np.broadcast_to(np.atleast_1d(np.asarray(kind, dtype=object)), (n,))
    for j, k in enumerate(PAGE_KINDS):
        out[:, 2 + j] = kind == k
    position = np.broadcast_to(np.atleast_1d(np.asarray(position)), (n,))
    out[:, 5] = position == 1
    out[:, 6] = position >= 2
    out[:, 7] = np.asarray(other_language, dtype=np.float64)
    angle = 2.0 * np.pi * np.asarray(hour, dtype=np.float64) / 24.0
    out[:, 8] = np.sin(angle)
    out[:, 9] = np.cos(angle)
    placement_id = np.broadcast_to(np.atleast_1d(np.asarray(placement_id)), (n,))
    for j, p in enumerate(placements):
        out[:, len(CONST_FEATURES) + j] = placement_id == p
    return out


def arm_features(asset_ctr, relevance, interest, page_fit, *, base_ctr: float) -> np.ndarray:
    """The per-ad features (n, 4) from the asset's CTR (posterior mean or a draw), relevance, interest fit
    (NaN: not personalised) and page fit, each 0..1."""
    interest = np.asarray(interest, dtype=np.float64)
    return np.column_stack(
        [
            logit(asset_ctr) - logit(base_ctr),
            np.asarray(relevance, dtype=np.float64) - 0.5,
            np.where(np.isnan(interest), 0.0, interest - 0.5),
            np.asarray(page_fit, dtype=np.float64) - 0.5,
        ]
    )


def prior(placements: tuple[int, ...], *, base_ctr: float, relevance_weight: float) -> tuple[np.ndarray, np.ndarray]:
    """The prior's mean and precision (diagonal) over ``feature_names(placements)``."""
    names = feature_names(placements)
    mean = np.zeros(len(names))
    sd = np.ones(len(names))
    mean[names.index("bias")], sd[names.index("bias")] = logit(base_ctr), 2.0
    mean[names.index("asset")], sd[names.index("asset")] = 1.0, 0.5
    mean[names.index("relevance")] = relevance_weight
    return mean, 1.0 / sd**2


@dataclass(frozen=True)
class Fit:
    mean: np.ndarray
    cov: np.ndarray
    iterations: int
    converged: bool
    log_posterior: float


class FitError(ValueError):
    """The data cannot be fitted (shapes, values); the message says why."""


def fit(
    X: np.ndarray,
    y: np.ndarray,
    *,
    prior_mean: np.ndarray,
    prior_precision: np.ndarray,
    max_iter: int = 50,
    tol: float = 1e-6,
) -> Fit:
    """The Laplace approximation of a logistic regression's posterior under a Gaussian prior: Newton steps
    (halved while they do not raise the log posterior) to the MAP weights, covariance = inverse Hessian."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if X.ndim != 2 or len(X) != len(y):
        raise FitError(f"X must be (records, features) and y one label per record, got {X.shape} and {y.shape}")
    if X.shape[1] != len(prior_mean) or len(prior_precision) != len(prior_mean):
        raise FitError(f"{X.shape[1]} features but a prior over {len(prior_mean)}")
    if not np.all(np.isfinite(X)) or not np.all((y == 0) | (y == 1)):
        raise FitError("features must be finite and labels 0 or 1")
    m0 = np.asarray(prior_mean, dtype=np.float64)
    lam = np.asarray(prior_precision, dtype=np.float64)

    def log_post(w: np.ndarray) -> float:
        z = X @ w
        # log sigmoid(z) for clicks, log sigmoid(-z) otherwise, computed stably
        ll = -np.logaddexp(0.0, np.where(y > 0, -z, z)).sum()
        return float(ll - 0.5 * np.sum(lam * (w - m0) ** 2))

    w = m0.copy()
    current = log_post(w)
    converged = False
    iterations = 0
    while iterations < max_iter:
        iterations += 1
        p = sigmoid(X @ w)
        grad = X.T @ (y - p) - lam * (w - m0)
        H = (X * (p * (1.0 - p))[:, None]).T @ X + np.diag(lam)
        step = np.linalg.solve(H, grad)
        t = 1.0
        while True:
            cand = w + t * step
            value = log_post(cand)
            if value >= current - 1e-12 or t < 1e-6:
                break
            t *= 0.5
        w, gain, current = cand, value - current, value
        if np.max(np.abs(t * step)) < tol or abs(gain) < tol:
            converged = True
            break
    p = sigmoid(X @ w)
    H = (X * (p * (1.0 - p))[:, None]).T @ X + np.diag(lam)
    cov = np.linalg.inv(H)
    return Fit(mean=w, cov=0.5 * (cov + cov.T), iterations=iterations, converged=converged, log_posterior=current)


@dataclass
class ClickModel:
    """A fitted (or prior) model as serving reads it: the weights' posterior over ``names``."""

    version: str
    placements: tuple[int, ...]
    mean: np.ndarray
    cov: np.ndarray
    base_ctr: float
    chol: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.mean = np.asarray(self.mean, dtype=np.float64)
        self.cov = np.asarray(self.cov, dtype=np.float64)
        d = len(feature_names(self.placements))
        if self.mean.shape != (d,) or self.cov.shape != (d, d):
            raise FitError(f"a model over {d} features needs a mean of {d} and a {d}x{d} covariance")
        try:
            self.chol = np.linalg.cholesky(self.cov)
        except np.linalg.LinAlgError:  # numerically not positive definite: a jitter on the diagonal
            self.chol = np.linalg.cholesky(self.cov + 1e-9 * np.eye(d))
        self.base_logit = float(logit(self.base_ctr))

    @property
    def names(self) -> tuple[str, ...]:
        return feature_names(self.placements)

    def const(self, **kw) -> np.ndarray:
        """One decision's per-decision features (see ``const_features``)."""
        return const_features(self.placements, **kw)[0]

    def mean_logit(
        self, x_const: np.ndarray, asset_ctr, relevance, interest, page_fit, *, asset_logit: np.ndarray | None = None
    ) -> np.ndarray:
        """The logit of the predicted CTR with the posterior mean weights, per ad: ``arm_features(...) @ weights``
        written out term by term (no (n, 4) matrix: the serving engine scores every campaign on each decision).
        ``asset_logit``: ``logit(asset_ctr)`` when the caller keeps it (the serving snapshot does, per campaign)."""
        w = self.mean
        a = logit(asset_ctr) if asset_logit is None else asset_logit
        interest = np.asarray(interest, dtype=np.float64)
        # the arm features' constant parts (-logit(base CTR), -0.5 each) folded into one scalar
        const = float(x_const @ w[N_ARM:]) - w[0] * self.base_logit - 0.5 * (w[1] + w[3])
        z = w[0] * a + w[1] * np.asarray(relevance, dtype=np.float64) + w[3] * np.asarray(page_fit, dtype=np.float64)
        z += const
        if w[2] != 0.0:
            z += w[2] * np.where(np.isnan(interest), 0.0, interest - 0.5)
        return z

    def sampler(self, *, alpha, beta, x_const, relevance, interest, page_fit) -> ContextualSampler:
        return ContextualSampler(self, alpha, beta, x_const, relevance, interest, page_fit)


class ContextualSampler:
    """Thompson draws of each ad's CTR: the weights from the model's posterior and each asset's CTR from its
    Beta posterior, in one draw per row (``policy.sample_slate`` and ``slate_probabilities`` call ``draw``)."""

    def __init__(self, model: ClickModel, alpha, beta, x_const, relevance, interest, page_fit) -> None:
        self.model = model
        self.alpha = np.asarray(alpha, dtype=np.float64)
        self.beta = np.asarray(beta, dtype=np.float64)
        self.x_const = np.asarray(x_const, dtype=np.float64)
        fixed = arm_features(np.full(len(self.alpha), 0.5), relevance, interest, page_fit, base_ctr=model.base_ctr)
        self.fixed = fixed[:, 1:]  # relevance, interest, page fit (the asset column is drawn)

    def __len__(self) -> int:
        return len(self.alpha)

    def draw(self, rng: np.random.Generator, m: int) -> np.ndarray:
        model = self.model
        w = model.mean + rng.standard_normal((m, len(model.mean))) @ model.chol.T
        asset = logit(rng.beta(self.alpha, self.beta, size=(m, len(self.alpha)))) - model.base_logit
        z = (w[:, N_ARM:] @ self.x_const)[:, None] + w[:, :1] * asset + w[:, 1:N_ARM] @ self.fixed.T
        return sigmoid(z)


def design(
    placements: tuple[int, ...],
    *,
    asset_ctr,
    relevance,
    interest,
    page_fit,
    personalised,
    kind,
    position,
    other_language,
    hour,
    placement_id,
    base_ctr: float,
) -> np.ndarray:
    """Full design rows (records, features) of logged impressions, in ``feature_names(placements)`` order."""
    arms = arm_features(asset_ctr, relevance, interest, page_fit, base_ctr=base_ctr)
    const = const_features(
        placements,
        personalised=personalised,
        kind=kind,
        position=position,
        other_language=other_language,
        hour=hour,
        placement_id=placement_id,
    )
    return np.hstack([arms, const])


def summary(model_mean: np.ndarray, cov: np.ndarray, names: tuple[str, ...]) -> list[dict]:
    """Each weight with its posterior standard deviation, for the admin and the closing report."""
    sd = np.sqrt(np.clip(np.diag(cov), 0, None))
    return [
        {"feature": n, "weight": round(float(m), 4), "sd": round(float(s), 4)}
        for n, m, s in zip(names, model_mean, sd, strict=True)
    ]
