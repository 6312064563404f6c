"""match_candidates (limbs) and match (score matrices): greedy as OpenPose, Hungarian optimal."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from pipeline.parsing.matching import match, match_candidates


def test_hungarian_beats_greedy_where_greedy_is_myopic():
    # Two necks (peaks 0, 1) and two shoulders (2, 3): greedy takes the single best pair first.
    conn_a, conn_b = np.array([0, 0, 1, 1]), np.array([2, 3, 2, 3])
    score = np.array([0.9, 0.8, 0.85, 0.1])
    greedy = match_candidates(conn_a, conn_b, score, "greedy")
    hungarian = match_candidates(conn_a, conn_b, score, "hungarian")
    assert sorted(greedy.tolist()) == [0, 3] and score[greedy].sum() == pytest.approx(1.0)
    assert sorted(hungarian.tolist()) == [1, 2] and score[hungarian].sum() == pytest.approx(1.65)
    assert np.all(np.diff(score[hungarian]) <= 0)  # handed to assembly by descending score
    # The best assignment pairs peak 1 with peak 3, which is no candidate: it must not appear.
    chosen = match_candidates(np.array([0, 1, 0]), np.array([2, 2, 3]), np.array([0.5, 0.4, 0.05]), "hungarian")
    assert chosen.tolist() == [0]



def _best_total(scores: np.ndarray) -> float:
    """Brute force: the largest total score of a one-to-one assignment of a small matrix."""
    a, b = scores.shape
    best = 0.0
    for k in range(min(a, b) + 1):
        for rows in itertools.combinations(range(a), k):
            for cols in itertools.permutations(range(b), k):
                values = scores[list(rows), list(cols)]
                if not np.isnan(values).any():
                    best = max(best, float(values.sum()))
    return best


@pytest.mark.parametrize("shape", [(3, 3), (2, 4), (4, 3)])
def test_match_hungarian_is_optimal_and_greedy_is_openposes_rule(shape):
    rng = np.random.default_rng(sum(shape))
    for _ in range(20):
        scores = rng.uniform(0, 1, shape)
        scores[rng.uniform(size=shape) < 0.25] = np.nan  # pairs that may never match
        hungarian = match(scores, method="hungarian")
        assert sum(scores[p] for p in hungarian) == pytest.approx(_best_total(scores))
        greedy = match(scores, method="greedy")
        # Greedy, written out: repeatedly the best remaining pair whose row and column are free.
        left, expected = np.where(np.isnan(scores), -np.inf, scores), []
        while np.isfinite(left).any():
            i, j = np.unravel_index(np.argmax(left), left.shape)
            expected.append((int(i), int(j)))
            left[i, :] = left[:, j] = -np.inf
        assert greedy == expected
        for pairs in (greedy, hungarian):
            assert len({i for i, _ in pairs}) == len({j for _, j in pairs}) == len(pairs)
            assert all(np.isfinite(scores[p]) for p in pairs)
            assert [scores[p] for p in pairs] == sorted((scores[p] for p in pairs), reverse=True)


def test_match_threshold_drops_weak_pairs_after_matching():
    scores = np.array([[0.9, 0.3], [0.5, 0.1]])  # both methods: (0, 0) and (1, 1)
    assert match(scores, method="greedy") == [(0, 0), (1, 1)]
    # (1, 1) is below the threshold: dropped, and row 1 does not get column 0 instead.
    assert match(scores, threshold=0.3, method="greedy") == [(0, 0)]
    assert match(scores, threshold=0.3, method="hungarian") == [(0, 0)]
    assert match(np.zeros((0, 3))) == [] and match(np.zeros((2, 0)), method="hungarian") == []


def test_match_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="score matrix"):
        match(np.zeros(3))
    with pytest.raises(ValueError, match="must be one of greedy, hungarian"):
        match(np.zeros((2, 2)), method="auction")
    with pytest.raises(ValueError, match="scores >= 0"):
        match(np.array([[-1.0, 0.5]]), method="hungarian")
