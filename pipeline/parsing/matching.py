"""One-to-one matching of scored (row, column) pairs: OpenPose's greedy rule or the Hungarian method.

The parser matches candidate limbs (rows: peaks of one part, columns: peaks of the other) with
:func:`match_candidates`; :func:`match` is the same matching on a dense score matrix (e.g. tracks
by poses).
"""
from __future__ import annotations

import numpy as np

from pipeline.parsing.config import MATCHING_MODES


def match_candidates(rows: np.ndarray, cols: np.ndarray, score: np.ndarray, method: str) -> np.ndarray:
    """Choose candidate pairs so that each row and each column is used at most once.

    rows, cols: int [C] the two ends of each candidate (e.g. peak rows of a limb's two parts);
    score: [C] (>= 0 for "hungarian"); no (row, col) pair may appear twice.
    method "greedy": take candidates by descending score (ties: input order), skipping any whose
    row or column is taken (OpenPose). "hungarian": maximum total score matching, over the
    candidates only.
    Returns the chosen candidate indices [M], by descending score (ties: input order).
    """
    order = np.argsort(-score, kind="stable")
    if len(order) <= 1:
        return order
    if method == "greedy":
        used_rows, used_cols, chosen = set(), set(), []
        for c, a, b in zip(order.tolist(), rows[order].tolist(), cols[order].tolist()):
            if a not in used_rows and b not in used_cols:
                used_rows.add(a)
                used_cols.add(b)
                chosen.append(c)
        return np.array(chosen, dtype=np.int64)
    ua, ra = np.unique(rows, return_inverse=True)
    ub, rb = np.unique(cols, return_inverse=True)
    weight = np.zeros((len(ua), len(ub)))
    index = np.full((len(ua), len(ub)), -1, np.int64)
    weight[ra, rb] = score
    index[ra, rb] = np.arange(len(score))
    from scipy.optimize import linear_sum_assignment  # here: 1 s to import, only Hungarian matching needs it

    best_rows, best_cols = linear_sum_assignment(weight, maximize=True)
    chosen = index[best_rows, best_cols]
    chosen = chosen[chosen >= 0]
    return chosen[np.argsort(-score[chosen], kind="stable")]


def match(scores: np.ndarray, threshold: float = -np.inf, method: str = "greedy") -> list[tuple[int, int]]:
    """One-to-one (i, j) pairs of a dense score matrix (:func:`match_candidates` over its entries).

    scores:    float [A, B], higher is better (>= 0 for "hungarian"); NaN marks a pair that may
               never be chosen.
    threshold: chosen pairs scoring below it are dropped afterwards (they took part in the
               matching, so they free no row or column for a worse pair).
    method:    "greedy" (ties in row-major order) or "hungarian".
    Returns [(i, j), ...] by descending score (ties in row-major order).
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2:
        raise ValueError(f"match needs a score matrix [A, B], got shape {scores.shape}")
    if method not in MATCHING_MODES:
        raise ValueError(f"matching method must be one of {', '.join(MATCHING_MODES)}, got {method!r}")
    i, j = np.nonzero(~np.isnan(scores))
    value = scores[i, j]
    if method == "hungarian" and (value < 0).any():
        raise ValueError("hungarian matching needs scores >= 0 (NaN for pairs that may not match)")
    chosen = match_candidates(i, j, value, method)
    chosen = chosen[value[chosen] >= threshold]
    return list(zip(i[chosen].tolist(), j[chosen].tolist()))
