"""iter_frames on the real sample videos and on synthetic PyAV-written ones: frame-exact ranges,
rotation, variable frame rate (plan_shards covers the selection)."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.video import FrameRange, iter_frames, plan_shards, probe, select_frames

from .conftest import FIVE, WALKING, digest, write_video


@pytest.mark.parametrize("threads", [True, False])
def test_all_shards_together_equal_one_sequential_decode(video_dir, reference_decode, threads):
    src = video_dir / WALKING
    info = probe(src)
    shards = plan_shards(info, frames_per_shard=200)
    assert len(shards) > 3 and all(s.start in info.keyframes for s in shards)
    got = [(f.index, f.timestamp_s, digest(f.image))
           for shard in shards for f in iter_frames(src, shard, info, threads=threads)]
    _, rows = reference_decode(WALKING)
    assert got == [(i, t, d) for i, (t, d) in enumerate(rows)]


def _check_range(src, info, rows, frame_range):
    got = [(f.index, f.timestamp_s, digest(f.image)) for f in iter_frames(src, frame_range, info)]
    assert [g[0] for g in got] == frame_range.frames()
    assert got == [(i, rows[i][0], rows[i][1]) for i in frame_range.frames()]


@pytest.mark.parametrize("start", [1, 9, 10, 11, 19, 695, 1383, 1389, 1390, 1393])
def test_range_at_non_keyframe_starts_is_frame_exact(video_dir, reference_decode, start):
    src = video_dir / WALKING
    info = probe(src)
    _check_range(src, info, reference_decode(WALKING)[1], FrameRange(start, min(start + 7, 1394)))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(start=st.integers(0, 1393), length=st.integers(1, 15), step=st.integers(1, 4))
def test_any_range_is_frame_exact(video_dir, reference_decode, start, length, step):
    src = video_dir / WALKING
    info = probe(src)
    _check_range(src, info, reference_decode(WALKING)[1],
                 FrameRange(start, min(start + length * step, 1394), step))


def test_shard_plan_covers_selection_for_every_sampling(video_dir):
    info = probe(video_dir / WALKING)
    for kwargs in ({"every_k": 1}, {"every_k": 7}, {"target_fps": 3.0}, {"target_fps": 50.0}):
        for per in (1, 37, 256, 5000):
            shards = plan_shards(info, frames_per_shard=per, **kwargs)
            chosen = [i for s in shards for i in s.frames()]
            assert chosen == select_frames(info, **kwargs)
            # boundaries on keyframes (GOP is 10 frames, so never more than 2x per mid-GOP cuts)
            assert all(max(s.frames()) < s.stop for s in shards)
    assert select_frames(info, every_k=7)[:3] == [0, 7, 14]
    assert len(select_frames(info, target_fps=50.0)) == 1394
    sel = select_frames(info, target_fps=2.5)  # 10 fps video -> 4 frames apart by time
    assert sel[:4] == [0, 4, 8, 12] and len(sel) == 349


def _pattern(h=32, w=48):
    image = np.zeros((h, w, 3), np.uint8)
    image[: h // 2, : w // 3] = (255, 255, 255)  # white block top-left
    image[h // 2:, 2 * w // 3:] = (0, 0, 255)     # red block bottom-right
    return image


def _orientation_errors(image, original):
    """Mean abs difference against each of the 4 rotations of `original` (k = CCW quarter turns)."""
    out = {}
    for k in range(4):
        ref = np.rot90(original, k)
        if ref.shape == image.shape:
            out[k] = float(np.abs(image.astype(int) - ref.astype(int)).mean())
    return out


@pytest.mark.parametrize("ccw,cw", [(90, 270), (-90, 90), (180, 180)])
def test_display_matrix_rotation_is_applied(tmp_path, ccw, cw):
    original = _pattern()
    path = write_video(tmp_path / "rot.mp4", [original] * 4, rotation_ccw=ccw)
    info = probe(path)
    assert info.rotation == cw
    expect_k = (ccw // 90) % 4  # display = original turned ccw degrees counter-clockwise
    h, w = np.rot90(original, expect_k).shape[:2]
    assert (info.width, info.height) == (w, h)
    frames = list(iter_frames(path, FrameRange(0, 4), info))
    errors = _orientation_errors(frames[1].image, original)
    assert min(errors, key=errors.get) == expect_k and errors[expect_k] < 8


def test_legacy_rotate_tag_is_applied(tmp_path):
    original = _pattern()
    path = write_video(tmp_path / "tag.mkv", [original] * 3, tags={"rotate": "90"})
    info = probe(path)
    assert info.rotation == 90 and (info.width, info.height) == (32, 48)
    errors = _orientation_errors(next(iter_frames(path, FrameRange(0, 1), info)).image, original)
    assert min(errors, key=errors.get) == 3  # 90 clockwise = 3 CCW quarter turns


def test_variable_frame_rate_timestamps_come_from_pts(tmp_path):
    pts = [0, 40, 80, 200, 233, 500, 510, 520, 900, 1000, 1400, 1420]  # milliseconds
    images = [np.full((32, 48, 3), 18 * i, np.uint8) for i in range(len(pts))]
    path = write_video(tmp_path / "vfr.mp4", images, pts=pts, time_base=Fraction(1, 1000))
    info = probe(path)
    expected = [p / 1000 for p in pts]
    assert info.num_frames == len(pts)
    np.testing.assert_allclose(info.timestamps_s(), expected, atol=1e-9)
    frames = list(iter_frames(path, FrameRange(3, 12, 2), info))
    assert [f.index for f in frames] == [3, 5, 7, 9, 11]
    np.testing.assert_allclose([f.timestamp_s for f in frames], expected[3::2], atol=1e-9)
    assert [abs(f.image.mean() - 18 * f.index) < 4 for f in frames] == [True] * 5
    # target fps picks by time: the first frame in each 0.25 s bucket (buckets 0, 2, 3, 4, 5)
    assert select_frames(info, target_fps=4.0) == [0, 5, 8, 9, 10]


def test_range_outside_video_is_rejected(video_dir):
    info = probe(video_dir / FIVE)
    with pytest.raises(ValueError, match="outside"):
        list(iter_frames(video_dir / FIVE, FrameRange(3, 6), info))
    with pytest.raises(ValueError):
        FrameRange(5, 3)

