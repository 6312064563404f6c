"""Time windows (start_s / end_s) in frame selection and shard plans, against timestamps from a
plain sequential PyAV decode of the real walking video."""
from __future__ import annotations

import math

import pytest

from pipeline.video import plan_shards, probe, select_frames
from .conftest import WALKING


@pytest.fixture(scope="module")
def walking(video_dir, reference_decode):
    """(VideoInfo, [timestamp_s of every frame]) of the walking video (1394 frames, 10 fps)."""
    return probe(video_dir / WALKING), [t for t, _ in reference_decode(WALKING)[1]]


@pytest.mark.parametrize("start_s, end_s", [(20.0, 35.55), (None, 3.0), (130.0, None), (0.0, 1e9)])
def test_a_window_keeps_exactly_the_frames_inside_it(walking, start_s, end_s):
    info, times = walking
    lo, hi = (start_s or 0.0), (math.inf if end_s is None else end_s)
    inside = [i for i, t in enumerate(times) if lo <= t < hi]
    assert inside, "the window must hold frames for this test to mean anything"
    assert select_frames(info, start_s=start_s, end_s=end_s) == inside
    assert select_frames(info, every_k=3, start_s=start_s, end_s=end_s) == inside[::3]  # counted from the window


def test_target_fps_inside_a_window(walking):
    info, times = walking
    chosen, last_bucket = [], None
    for i, t in enumerate(times):
        if 20.0 <= t < 40.0 and (last_bucket is None or math.floor(t * 0.5 + 1e-6) > last_bucket):
            chosen.append(i)
            last_bucket = math.floor(t * 0.5 + 1e-6)
    assert len(chosen) == 10  # one frame per 2 s of the 20 s window
    assert select_frames(info, target_fps=0.5, start_s=20.0, end_s=40.0) == chosen


@pytest.mark.parametrize("kwargs", [{"every_k": 3, "start_s": 20.0, "end_s": 35.55},
                                    {"every_k": 1, "end_s": 12.34}, {"target_fps": 2.0, "start_s": 100.0}])
def test_shard_plan_covers_the_windowed_selection(walking, kwargs):
    info, _ = walking
    for per in (1, 17, 64, 5000):
        shards = plan_shards(info, frames_per_shard=per, **kwargs)
        assert [i for s in shards for i in s.frames()] == select_frames(info, **kwargs)
        assert all(s.start <= min(s.frames()) and max(s.frames()) < s.stop for s in shards)


def test_an_empty_window_plans_nothing_and_a_reversed_one_is_refused(walking):
    info, _ = walking
    assert plan_shards(info, frames_per_shard=64, start_s=500.0) == []
    with pytest.raises(ValueError, match="end_s .* must be greater than start_s"):
        select_frames(info, start_s=10.0, end_s=10.0)
