"""Track smoothing: error against the noiseless truth, filters' exact properties, gap filling."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline.video import TrackConfig, track_video
from pipeline.video.smoothing import one_euro_both_ways, savgol_on_grid, segments

from .synthetic import CLUTTER, crossing_scene, observe, skeleton


def _errors(scene, config):
    """(raw, smoothed) RMS px error against the truth over tracked real people's found joints."""
    tracked, _ = track_video(scene.rows, config)
    rows = tracked[(tracked["truth_id"] != CLUTTER) & tracked["track_id"].notna()]
    truth = np.stack([scene.truth[(t, f)] for t, f in zip(rows["truth_id"], rows["frame_index"])])[..., :2]
    raw = np.stack(rows["keypoints"].to_numpy()).reshape(-1, 18, 3)
    smooth = np.stack(rows["keypoints_smoothed"].to_numpy()).reshape(-1, 18, 3)
    seen = raw[..., 2] > 0
    rms = lambda xy: float(np.sqrt(((xy[seen] - truth[seen]) ** 2).sum(-1).mean()))  # noqa: E731
    return rms(raw[..., :2]), rms(smooth[..., :2])


@pytest.mark.parametrize("config", [TrackConfig(smoothing="one_euro"), TrackConfig(smoothing="savgol")],
                         ids=["one_euro", "savgol"])
@pytest.mark.parametrize("vfr", [False, True], ids=["25fps", "vfr"])
def test_smoothing_brings_keypoints_closer_to_the_truth(config, vfr):
    raw, smooth = _errors(crossing_scene(vfr=vfr), config)
    assert smooth < 0.8 * raw, (raw, smooth)


def test_no_smoothing_leaves_the_column_empty():
    tracked, _ = track_video(crossing_scene(frames=40).rows, TrackConfig(smoothing="none"))
    assert tracked["keypoints_smoothed"].isna().all() and tracked["track_id"].notna().any()


def test_one_euro_keeps_constants_and_steady_motion_without_lag():
    t = np.arange(50) / 25.0
    starts, ends = np.zeros((50, 1), bool), np.zeros((50, 1), bool)
    starts[0], ends[-1] = True, True
    constant = np.broadcast_to([[[3.0, -7.0]]], (50, 1, 2)).copy()
    assert np.allclose(one_euro_both_ways(t, constant, starts, ends, 100.0, 1.0, 1.0, 1.0), constant)
    ramp = np.stack([100 + 80 * t, 50 - 20 * t], axis=1)[:, None]  # 80 px/s
    out = one_euro_both_ways(t, ramp, starts, ends, 100.0, 1.0, 0.0, 1.0)
    assert np.abs(out - ramp)[15:35].max() < 0.5  # the two passes' lags cancel away from the ends


def test_savgol_keeps_polynomials_up_to_its_order_on_any_spacing():
    t = np.sort(np.random.default_rng(0).uniform(0, 2, 60))
    t = np.concatenate([[0.0], t, [2.0]])
    quad = np.stack([3 + 2 * t - 5 * t ** 2, 1 - t ** 2], axis=1)
    out = savgol_on_grid(t, quad, 0.04, 0.5, 2)
    assert np.abs(out - quad).max() < 0.01  # only the linear resampling's error on the curve
    uniform = np.arange(30) * 0.1
    cubic = np.stack([uniform ** 3, uniform], axis=1)
    assert np.allclose(savgol_on_grid(uniform, cubic, 0.1, 0.7, 3), cubic)
    short = savgol_on_grid(uniform[:3], cubic[:3], 0.1, 0.7, 3)  # window shrinks below polyorder: unchanged
    assert np.array_equal(short, cubic[:3])


def test_segments_split_where_a_joint_is_missing_longer_than_fill_gaps_s():
    t = np.arange(12) * 0.1
    seen = np.array([1, 1, 0, 1, 0, 0, 0, 0, 1, 1, 0, 0], bool)
    assert segments(t, seen, 0.1, 0.15).tolist() == [0, 0, 0, 0, -1, -1, -1, -1, 1, 1, -1, -1]
    assert segments(t, seen, 0.1, 0.5).tolist() == [0] * 10 + [-1, -1]
    assert segments(t, seen, 0.1, 0.0).tolist() == [0, 0, -1, 1, -1, -1, -1, -1, 2, 2, -1, -1]


def test_short_joint_gaps_are_filled_and_flagged_long_ones_left_missing():
    person = {f: skeleton((100 + 4 * f, 300), 180) for f in range(50)}  # no limb swing: linear motion
    scene = observe({0: person}, fps=25.0, joint_miss=0.0, pose_miss=0.0)
    rows = scene.rows.copy()
    wrist = 4
    for span in (range(10, 15), range(30, 45)):  # 0.2 s and 0.6 s without the right wrist
        for g in span:
            kp = rows.at[g, "keypoints"].copy()
            kp[3 * wrist:3 * wrist + 3] = (np.nan, np.nan, 0.0)
            rows.at[g, "keypoints"] = kp
    tracked, _ = track_video(rows, TrackConfig(fill_gaps_s=0.3))
    smooth = np.stack(tracked["keypoints_smoothed"].to_numpy()).reshape(-1, 18, 3)
    filled = range(10, 15)
    assert np.isfinite(smooth[filled, wrist, :2]).all() and (smooth[filled, wrist, 2] == 0).all()
    truth = np.stack([scene.truth[(0, f)] for f in filled])
    assert np.abs(smooth[filled, wrist, :2] - truth[:, wrist, :2]).max() < 4  # interpolated, not invented
    assert np.isnan(smooth[30:45, wrist, :2]).all() and (smooth[30:45, wrist, 2] == 0).all()
    assert (smooth[:10, wrist, 2] > 0).all()  # found joints keep their score
    raw = np.stack(tracked["keypoints"].to_numpy()).reshape(-1, 18, 3)
    assert np.isnan(raw[filled, wrist, :2]).all()  # the raw column still says "not found"
    no_fill = np.stack(track_video(rows, TrackConfig(fill_gaps_s=0.0))[0]["keypoints_smoothed"].to_numpy())
    assert np.isnan(no_fill.reshape(-1, 18, 3)[filled, wrist, :2]).all()
