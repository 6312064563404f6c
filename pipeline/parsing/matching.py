"""Per-limb bipartite matching of candidate limbs: OpenPose's greedy rule or the Hungarian method."""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment


def match_limb(conn_a: np.ndarray, conn_b: np.ndarray, score: np.ndarray, mode: str) -> np.ndarray:
    """Choose candidate limbs so that each peak is used at most once.

    conn_a, conn_b: int [C] peak rows of the candidates' two parts; score: [C] (> 0).
    mode "greedy": take candidates by descending score (ties: input order), skipping any whose
    peak is taken (OpenPose). mode "hungarian": maximum total score matching.
    Returns the chosen candidate indices [M], by descending score.
    """
    order = np.argsort(-score, kind="stable")
    if len(order) <= 1:
        return order
    if mode == "greedy":
        used_a, used_b, chosen = set(), set(), []
        for c, a, b in zip(order.tolist(), conn_a[order].tolist(), conn_b[order].tolist()):
            if a not in used_a and b not in used_b:
                used_a.add(a)
                used_b.add(b)
                chosen.append(c)
        return np.array(chosen, dtype=np.int64)
    ua, ra = np.unique(conn_a, return_inverse=True)
    ub, rb = np.unique(conn_b, return_inverse=True)
    weight = np.zeros((len(ua), len(ub)))
    index = np.full((len(ua), len(ub)), -1, np.int64)
    weight[ra, rb] = score
    index[ra, rb] = np.arange(len(score))
    rows, cols = linear_sum_assignment(weight, maximize=True)
    chosen = index[rows, cols]
    chosen = chosen[chosen >= 0]
    return chosen[np.argsort(-score[chosen], kind="stable")]
