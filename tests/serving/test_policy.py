"""The serving policy on its own: priors, slates, and propensities that match what it does."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from adengine.serving.policy import BetaSampler, prior_from_scores, slate_probabilities, thompson_slate


def test_prior_ranks_assets_by_audience_fit_within_the_campaign():
    alpha, beta = prior_from_scores(np.array([0.71, 0.90, np.nan, 0.80]), base_ctr=0.02, strength=50, spread=0.5)
    means = alpha / (alpha + beta)
    assert means[1] > means[3] > means[0]
    assert means[1] == pytest.approx(0.03) and means[0] == pytest.approx(0.01)
    assert means[2] == pytest.approx(0.02)  # no score: the base rate
    assert np.allclose(alpha + beta, 50)


def test_slate_takes_at_most_one_arm_per_campaign():
    rng = np.random.default_rng(1)
    group = np.array([0, 0, 0, 1, 2])
    for _ in range(50):
        slate = thompson_slate(
            rng, alpha=np.ones(5), beta=np.ones(5), weight=np.ones(5), group=group, n=3, epsilon=0.1, draws=50
        )
        assert len(slate.arms) == 3
        assert len(set(group[slate.arms])) == 3


@pytest.mark.parametrize("epsilon", [0.0, 0.2])
def test_logged_propensities_match_how_often_the_policy_chooses(epsilon):
    # given four arms in three campaigns with different posteriors
    rng = np.random.default_rng(7)
    alpha, beta = np.array([2.0, 3.0, 1.0, 5.0]), np.array([50.0, 60.0, 40.0, 45.0])
    group = np.array([0, 0, 1, 2])
    runs = 3000
    first = Counter()
    logged: dict[int, list[float]] = {}
    # when the policy chooses many times
    for _ in range(runs):
        s = thompson_slate(rng, alpha=alpha, beta=beta, weight=np.ones(4), group=group, n=2, epsilon=epsilon, draws=200)
        first[int(s.arms[0])] += 1
        logged.setdefault(int(s.arms[0]), []).append(float(s.propensities[0]))
    # then the mean logged propensity of each first-position arm is its observed frequency
    for arm, count in first.items():
        assert np.mean(logged[arm]) == pytest.approx(count / runs, abs=0.03)
    if epsilon:
        assert min(min(v) for v in logged.values()) >= epsilon / (3 * 2) - 1e-12  # exploration floor


@pytest.mark.parametrize("epsilon", [0.0, 0.3])
def test_slates_drawn_in_batches_are_the_policy_s_slates(epsilon, monkeypatch):
    from adengine.serving import engine
    from adengine.serving.engine import SLATE_BATCH, PreparedSlate

    monkeypatch.setattr(engine._local, "rng", np.random.default_rng(4), raising=False)  # repeatable draws

    # given a prepared slate of five arms in four campaigns, shared by many decisions
    alpha, beta = np.array([2.0, 3.0, 1.0, 5.0, 4.0]), np.array([50.0, 60.0, 40.0, 45.0, 70.0])
    group = np.array([0, 0, 1, 2, 3])
    weight = np.array([1.0, 1.2, 0.8, 1.0, 1.5])
    sampler = BetaSampler(alpha, beta)
    prepared = PreparedSlate([], np.zeros(0), group, {}, sampler, weight, group)
    # when it serves many decisions, each takes a slate of its own, drawn in growing batches
    runs = 6000
    taken = [prepared.take(n=2, epsilon=epsilon) for _ in range(runs)]
    assert len({id(s) for s in taken}) == runs
    assert prepared.batch == SLATE_BATCH
    # then they are distributed as the policy's single draws are (its logged propensities hold for them)
    expected = slate_probabilities(np.random.default_rng(3), sampler=sampler, weight=weight, group=group, n=2,
                                   epsilon=epsilon, draws=40_000)  # fmt: skip
    for position in (0, 1):
        counts = np.bincount([int(s.arms[position]) for s in taken], minlength=5) / runs
        assert np.allclose(counts, expected[position], atol=0.02), (position, counts, expected[position])
    assert all(len(set(group[s.arms])) == 2 for s in taken)
    assert 0.8 * epsilon <= np.mean([s.explored for s in taken]) <= 1.2 * epsilon + 1e-9


def _wins(rng, weight, runs=500) -> Counter:
    """How often each of two arms (Beta(5, 95) and Beta(20, 80)) is chosen with these weights."""
    return Counter(
        int(
            thompson_slate(
                rng,
                alpha=np.array([5.0, 20.0]),
                beta=np.array([95.0, 80.0]),
                weight=np.array(weight),
                group=np.array([0, 1]),
                n=1,
                epsilon=0.0,
                draws=10,
            ).arms[0]
        )
        for _ in range(runs)
    )


def test_better_arm_wins_more_often_and_weight_scales_value():
    rng = np.random.default_rng(3)
    assert _wins(rng, [1.0, 1.0])[1] > 450
    # an eight times higher bid on the weaker arm turns it around
    assert _wins(rng, [8.0, 1.0])[0] > 400


def test_unsorted_groups_are_refused():
    with pytest.raises(ValueError, match="sorted"):
        thompson_slate(
            np.random.default_rng(0),
            alpha=np.ones(2),
            beta=np.ones(2),
            weight=np.ones(2),
            group=np.array([1, 0]),
            n=1,
            epsilon=0,
            draws=5,
        )


def test_generated_copy_starts_no_higher_than_the_human_written():
    scores = np.array([0.2, 0.9, 0.5])  # the generated asset (second) fits the audience best
    human = np.array([True, False, True])
    alpha, beta = prior_from_scores(scores, base_ctr=0.02, strength=50, spread=0.5, human=human)
    mean = alpha / (alpha + beta)
    # it starts at the best human-written asset's prior, not above it
    assert mean[1] == pytest.approx(mean[2]) and mean[1] < 0.02 * 1.5
    alone = prior_from_scores(scores, base_ctr=0.02, strength=50, spread=0.5)
    assert (alone[0] / (alone[0] + alone[1]))[1] == pytest.approx(0.03)
    # with no human copy in the group, the ranking by fit stands
    only_generated = prior_from_scores(scores, base_ctr=0.02, strength=50, spread=0.5, human=np.zeros(3, bool))
    assert np.allclose(only_generated[0], alone[0])
