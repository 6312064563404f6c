"""Assembly of matched limbs into people along the limb tree (OpenPose's subset algorithm)."""
from __future__ import annotations

import numpy as np

from pipeline.fields import PoseFields
from pipeline.parsing.candidates import LimbCandidates, find_candidates
from pipeline.parsing.config import ParseConfig
from pipeline.parsing.matching import match_candidates
from pipeline.poses import Poses
from pipeline.skeleton import LIMBS, NUM_KEYPOINTS

#: Limbs that may start a new person; the redundant ear-shoulder limbs only attach and merge.
_TREE_LIMBS = len(LIMBS) - 2
#: A complete person has 18 parts and 17 tree limbs: the most terms its total score can hold.
_SCORE_TERMS = 2 * NUM_KEYPOINTS - 1


def _group(cands: LimbCandidates, config: ParseConfig) -> tuple[list[list[int]], list[float], list[int]]:
    """Matched limbs -> people as (peak row per part or -1, total score, part count) lists."""
    peak_score = cands.peak_score.astype(np.float64).tolist()
    owner = [-1] * len(peak_score)  # person of each peak
    people: list[list[int] | None] = []
    totals: list[float] = []
    counts: list[int] = []
    num_limbs = len(LIMBS) if config.redundant_limbs else _TREE_LIMBS
    for k in range(num_limbs):
        part_a, part_b = LIMBS[k]
        conn_a, conn_b, score = cands.limb(k)
        chosen = match_candidates(conn_a, conn_b, score, config.matching)
        for ga, gb, s in zip(conn_a[chosen].tolist(), conn_b[chosen].tolist(),
                             score[chosen].astype(np.float64).tolist()):
            pa, pb = owner[ga], owner[gb]
            if pa >= 0 and pb >= 0:
                if pa == pb:
                    continue
                first, second = people[pa], people[pb]
                if any(x >= 0 and y >= 0 for x, y in zip(first, second)):
                    continue  # the two partial people share a part: not the same person
                for part, peak in enumerate(second):
                    if peak >= 0:
                        first[part] = peak
                        owner[peak] = pa
                totals[pa] += totals[pb] + s
                counts[pa] += counts[pb]
                people[pb] = None
            elif pa >= 0 or pb >= 0:
                person, part, peak = (pa, part_b, gb) if pa >= 0 else (pb, part_a, ga)
                if people[person][part] >= 0:
                    continue  # that part of this person is already taken by another peak
                people[person][part] = peak
                owner[peak] = person
                totals[person] += peak_score[peak] + s
                counts[person] += 1
            elif k < _TREE_LIMBS:
                row = [-1] * NUM_KEYPOINTS
                row[part_a], row[part_b] = ga, gb
                owner[ga] = owner[gb] = len(people)
                people.append(row)
                totals.append(peak_score[ga] + peak_score[gb] + s)
                counts.append(2)
    alive = [i for i, row in enumerate(people) if row is not None]
    return [people[i] for i in alive], [totals[i] for i in alive], [counts[i] for i in alive]


def assemble(cands: LimbCandidates, config: ParseConfig = ParseConfig()) -> Poses:
    """People from scored candidate limbs.

    Limbs are matched one limb type at a time (``config.matching``) and joined along the limb
    tree: a limb whose parts belong to no person starts one (tree limbs only), one whose part
    belongs to a person adds the other part if that person lacks it, and one joining two partial
    people merges them if they share no part. People with fewer than ``min_parts`` parts or a
    mean score (sum of part and limb scores / parts) under ``min_mean_score`` are dropped.

    Returns Poses: keypoints [P, 18, 3] (x, y in original-image pixels, peak score > 0; missing
    parts NaN, NaN, 0) and per-person score = that sum / 35, i.e. the mean confidence over the
    18 keypoints and 17 tree limbs of a full skeleton with missing ones counting 0 (OpenPose
    ranks by the same sum), sorted by descending score, at most ``max_people``.
    """
    rows, totals, counts = _group(cands, config)
    keep = [n for n in range(len(rows))
            if counts[n] >= config.min_parts and totals[n] / counts[n] >= config.min_mean_score]
    if not keep:
        return Poses.empty()
    idx = np.array([rows[n] for n in keep], np.int64)  # [P, 18]
    scores = np.array([totals[n] for n in keep]) / _SCORE_TERMS
    order = np.argsort(-scores, kind="stable")[:config.max_people]
    idx, scores = idx[order], scores[order]
    found = idx >= 0
    keypoints = np.zeros(idx.shape + (3,), np.float32)
    keypoints[..., :2] = np.where(found[..., None], cands.peak_xy[np.maximum(idx, 0)], np.nan)
    keypoints[..., 2] = np.where(found, cands.peak_score[np.maximum(idx, 0)], 0.0)
    return Poses(keypoints=keypoints, scores=scores.astype(np.float32))


def parse(fields: PoseFields, config: ParseConfig = ParseConfig()) -> Poses:
    """People in one image's network output: ``assemble(find_candidates(fields, config), config)``.

    fields: PoseFields (maps in stride cells, mapped to pixels by its scale/offset).
    Returns Poses in original-image pixels, sorted by descending score, at most max_people.
    Raises ValueError if the maps hold NaN/inf.
    """
    return assemble(find_candidates(fields, config), config)
