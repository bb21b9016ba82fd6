"""Off-policy estimators on synthetic logs whose true value is known."""

from __future__ import annotations

import numpy as np
import pytest

from adengine.ope import BanditLog, LogError, evaluate, fit_reward_model

TRUE_CTR = np.array([0.02, 0.05, 0.01, 0.08, 0.03])


def synthetic_log(seed: int, n: int = 20_000, logging: np.ndarray | None = None) -> BanditLog:
    """A log of a known (possibly non-uniform) logging policy over five ads with known click rates."""
    rng = np.random.default_rng(seed)
    logging = np.full(5, 0.2) if logging is None else logging
    action = rng.choice(5, size=n, p=logging)
    reward = (rng.random(n) < TRUE_CTR[action]).astype(float)
    return BanditLog(action=action, reward=reward, pscore=logging[action], position=np.zeros(n, int), n_actions=5)


def policy_matrix(n: int, probs: np.ndarray) -> np.ndarray:
    return np.tile(probs, (n, 1))


@pytest.mark.parametrize("logging", [None, np.array([0.4, 0.3, 0.15, 0.1, 0.05])], ids=["uniform", "skewed"])
def test_each_estimator_covers_the_truth_in_most_seeds(logging):
    # given a new policy that favours the best ad, whose true CTR is known
    target = np.array([0.05, 0.15, 0.05, 0.7, 0.05])
    truth = float(target @ TRUE_CTR)
    covered = {name: 0 for name in ("ipw", "snipw", "dm", "dr")}
    seeds = range(10)
    for seed in seeds:
        log = synthetic_log(seed, logging=logging)
        result = evaluate(
            log, policy_matrix(len(log), target), reward_model=fit_reward_model, n_bootstrap=200, seed=seed
        )
        for name, est in result.items():
            covered[name] += est.ci_low <= truth <= est.ci_high
            assert est.ci_low <= est.value <= est.ci_high
    # then each 95 % interval holds the truth in most seeds (about 9.5 of 10 expected)
    assert all(count >= 8 for count in covered.values()), covered


def test_doubly_robust_survives_a_wrong_reward_model_and_the_direct_method_does_not():
    target = np.array([0.0, 0.0, 0.0, 1.0, 0.0])  # always the best ad: true CTR 0.08
    dr_covers = 0
    for seed in range(5):
        log = synthetic_log(seed)
        wrong = np.tile(np.array([0.05, 0.05, 0.05, 0.02, 0.05]), (len(log), 1))  # badly underrates ad 3
        result = evaluate(log, policy_matrix(len(log), target), q_hat=wrong, n_bootstrap=200, seed=seed)
        dr_covers += result["dr"].ci_low <= 0.08 <= result["dr"].ci_high
        assert result["dm"].ci_high < 0.05  # the model's error, not the data, decides DM
    assert dr_covers >= 4


def test_bad_logs_are_refused_with_the_problem_named():
    ok = synthetic_log(0, n=100)
    with pytest.raises(LogError, match="empty"):
        BanditLog(
            action=np.array([], int), reward=np.array([]), pscore=np.array([]), position=np.array([]), n_actions=5
        )
    with pytest.raises(LogError, match="propensity.*record 1"):
        BanditLog(
            action=np.array([0, 1]), reward=np.array([0.0, 1.0]), pscore=np.array([0.5, 0.0]),
            position=np.zeros(2, int), n_actions=2,
        )  # fmt: skip
    with pytest.raises(LogError, match="policy must be"):
        evaluate(ok, np.ones((3, 5)) / 5)
    with pytest.raises(LogError, match="reward model"):
        evaluate(ok, policy_matrix(100, np.full(5, 0.2)))
