"""Label-free quality figures of a finished job (how many people, how confident), for its manifest."""
from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.job.read import keypoints_array


def quality_summary(poses: pd.DataFrame, frames: pd.DataFrame) -> dict:
    """JSON-ready quality summary of one job's output tables.

    poses:  the poses table (one row per person; needs source_uri, frame_index, keypoints, score).
    frames: the frames table (one row per processed frame, with num_people; frames where nobody
            was found count too).
    Returns {"frames", "people", "people_per_frame_mean", "people_per_frame_median",
    "empty_frame_share" (share of frames with nobody, 0-1), "person_score_mean",
    "keypoint_score_mean" (mean score of found keypoints, score > 0), "keypoints_per_person_mean",
    "per_source": {source_uri: the same figures for that source's frames}}. Means over nothing
    are null.
    """
    missing = [c for c in ("source_uri", "frame_index", "num_people") if c not in frames.columns]
    missing += [c for c in ("source_uri", "keypoints", "score") if c not in poses.columns]
    if missing:
        raise ValueError(f"quality_summary needs the poses and frames tables; missing columns {missing}")
    scores = keypoints_array(poses)[..., 2]
    found = scores > 0
    per_person = pd.DataFrame({
        "source_uri": poses["source_uri"].to_numpy(),
        "score": poses["score"].to_numpy(np.float64),
        "kp_sum": np.where(found, scores, 0).sum(axis=1), "kp_n": found.sum(axis=1),
    })
    summary = _figures(frames["num_people"].to_numpy(np.int64), per_person)
    people_of = dict(tuple(per_person.groupby("source_uri", sort=False)))
    summary["per_source"] = {
        str(uri): _figures(group["num_people"].to_numpy(np.int64), people_of.get(uri, per_person.iloc[:0]))
        for uri, group in frames.groupby("source_uri", sort=True)
    }
    return summary


def _figures(num_people: np.ndarray, people: pd.DataFrame) -> dict:
    kp_n = int(people["kp_n"].sum())
    return {
        "frames": int(len(num_people)),
        "people": int(num_people.sum()),
        "people_per_frame_mean": _mean(num_people),
        "people_per_frame_median": float(np.median(num_people)) if len(num_people) else None,
        "empty_frame_share": _mean(num_people == 0),
        "person_score_mean": _mean(people["score"].to_numpy()),
        "keypoint_score_mean": float(people["kp_sum"].sum() / kp_n) if kp_n else None,
        "keypoints_per_person_mean": _mean(people["kp_n"].to_numpy()),
    }


def _mean(values: np.ndarray) -> float | None:
    return float(np.mean(values)) if len(values) else None
