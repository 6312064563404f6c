"""draw_poses, track colours and VideoWriter."""
from __future__ import annotations

import av
import numpy as np
import pytest

from pipeline.testing import walking_person
from pipeline.video.drawing import VideoWriter, draw_poses, track_colour


def test_draw_poses_skips_missing_keypoints_and_low_scores():
    kp = walking_person((100, 50), 120)
    kp[4] = (np.nan, np.nan, 0)   # r_wrist missing -> limb (3, 4) not drawn
    kp[7, 2] = 0.1                # l_wrist below min_score
    image = draw_poses(np.zeros((200, 200, 3), np.uint8), kp[None], [1], min_score=0.2, thickness=2)
    near = lambda p: image[int(p[1]) - 1:int(p[1]) + 2, int(p[0]) - 1:int(p[0]) + 2].max()
    assert near(walking_person((100, 50), 120)[4]) == 0 and near(kp[7]) == 0
    assert near((kp[2] + kp[3]) / 2) > 0  # r_shoulder-r_elbow drawn
    with pytest.raises(ValueError):
        draw_poses(np.zeros((10, 10, 3), np.uint8), np.zeros((1, 17, 3)))



def test_track_colours_are_stable_distinct_and_grey_for_none():
    colours = [track_colour(t) for t in range(12)]
    assert colours == [track_colour(t) for t in range(12)] and len(set(colours)) == 12
    assert track_colour(None) == track_colour(float("nan")) == (200, 200, 200)
    nearest = min(np.abs(np.subtract(a, b)).sum() for i, a in enumerate(colours[:6]) for b in colours[i + 1:6])
    assert nearest > 60  # the first tracks of a video are told apart at a glance


def test_video_writer_pads_odd_sizes_and_keeps_timestamps(tmp_path):
    frames = [np.full((31, 45, 3), 40 * k, np.uint8) for k in range(4)]
    times = [0.0, 0.1, 0.35, 0.4]
    with VideoWriter(tmp_path / "odd.mp4", fps=10) as writer:
        for image, t in zip(frames, times):
            writer.write(image, t)
        with pytest.raises(ValueError, match="differs from the first frame's"):
            writer.write(np.zeros((40, 40, 3), np.uint8), 0.5)
    with av.open(str(tmp_path / "odd.mp4")) as c:
        s = c.streams.video[0]
        decoded = [(float(f.pts * s.time_base), f.to_ndarray(format="bgr24")) for f in c.decode(s)]
    assert [round(t, 6) for t, _ in decoded] == times
    assert decoded[0][1].shape == (32, 46, 3)  # one black row and column added
    for (_, image), original in zip(decoded, frames):
        assert abs(float(image[:31, :45].mean()) - float(original.mean())) < 3
