"""quality_summary on hand-built tables whose figures are worked out by hand."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pipeline.evaluation import quality_summary


def _person(uri: str, frame: int, score: float, kp_scores: list[float]) -> dict:
    kp = np.full((18, 3), np.nan, np.float32)
    kp[:, 2] = 0
    for i, s in enumerate(kp_scores):
        kp[i] = (10 + i, 20 + i, s)
    return {"source_uri": uri, "frame_index": frame, "score": score, "keypoints": kp.ravel()}


def test_figures_and_per_source_breakdown():
    frames = pd.DataFrame({
        "source_uri": ["a.jpg", "v.mp4", "v.mp4", "v.mp4", "v.mp4"],
        "frame_index": [0, 0, 1, 2, 3],
        "num_people": [2, 0, 1, 0, 3],
    })
    poses = pd.DataFrame([
        _person("a.jpg", 0, 0.9, [0.5, 0.5]), _person("a.jpg", 0, 0.7, [1.0]),
        _person("v.mp4", 1, 0.4, [0.2, 0.2, 0.2, 0.2]),
        _person("v.mp4", 3, 0.3, [0.6]), _person("v.mp4", 3, 0.2, [0.6]), _person("v.mp4", 3, 0.1, [0.6, 0.6]),
    ])
    q = quality_summary(poses, frames)
    assert q["frames"] == 5 and q["people"] == 6
    assert q["people_per_frame_mean"] == pytest.approx(6 / 5)
    assert q["people_per_frame_median"] == 1.0
    assert q["empty_frame_share"] == pytest.approx(2 / 5)
    assert q["person_score_mean"] == pytest.approx((0.9 + 0.7 + 0.4 + 0.3 + 0.2 + 0.1) / 6)
    # found keypoints: 2x0.5, 1x1.0, 4x0.2, 4x0.6 -> 11 keypoints
    assert q["keypoint_score_mean"] == pytest.approx((1.0 + 1.0 + 0.8 + 2.4) / 11, rel=1e-6)
    assert q["keypoints_per_person_mean"] == pytest.approx(11 / 6)
    v = q["per_source"]["v.mp4"]
    assert (v["frames"], v["people"], v["empty_frame_share"]) == (4, 4, 0.5)
    assert v["people_per_frame_median"] == 0.5
    a = q["per_source"]["a.jpg"]
    assert a["keypoint_score_mean"] == pytest.approx(2.0 / 3, rel=1e-6) and a["empty_frame_share"] == 0.0
    json.dumps(q, allow_nan=False)  # goes into the manifest as-is


def test_job_with_nobody_found():
    frames = pd.DataFrame({"source_uri": ["cat.jpg"], "frame_index": [0], "num_people": [0]})
    poses = pd.DataFrame(columns=["source_uri", "frame_index", "score", "keypoints"])
    q = quality_summary(poses, frames)
    assert q["empty_frame_share"] == 1.0 and q["people"] == 0
    assert q["person_score_mean"] is None and q["keypoint_score_mean"] is None
    json.dumps(q, allow_nan=False)


def test_wrong_tables_are_named():
    with pytest.raises(ValueError, match="num_people"):
        quality_summary(pd.DataFrame(columns=["source_uri", "keypoints", "score"]),
                        pd.DataFrame(columns=["source_uri", "frame_index"]))
