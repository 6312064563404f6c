"""plan(): the spec's video frame selection (target_fps, start_s, end_s) reaches every video's shard
plan, and videos are probed through Source.open_path (a non-UTF-8 local name)."""
from __future__ import annotations

import os
import shutil

import av
import pytest

from pipeline.job.listing import list_sources
from pipeline.job.shards import plan

FIVE = "mmpose-demo-5frames.mp4"
WALKING = "one-by-one-person-detection.mp4"


def _timestamps(path) -> list[float]:
    """Presentation time of every frame, from a plain PyAV decode (independent of pipeline.video)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        start = stream.start_time or 0
        return sorted(float((f.pts - start) * stream.time_base) for f in container.decode(stream))


def _frames(shards) -> list[int]:
    return [i for s in shards for i in s.frames.frames()]


@pytest.fixture(scope="module")
def walking_times(media_dir):
    return _timestamps(media_dir / "video" / WALKING)


def test_window_and_target_fps_reach_the_shards(media_dir, walking_times):
    sources, errors = list_sources([str(media_dir / "video" / WALKING)])
    assert not errors
    common = {"images_per_shard": 4, "frames_per_shard": 32, "frame_step": 1, "model_id": "m@1", "config_id": "c1"}
    whole, _ = plan(sources, **common)
    windowed, _ = plan(sources, **common, start_s=10.0, end_s=20.0)
    assert _frames(windowed) == [i for i, t in enumerate(walking_times) if 10.0 <= t < 20.0]
    assert _frames(whole) == list(range(len(walking_times)))
    sampled, _ = plan(sources, **common, target_fps=1.0, start_s=10.0, end_s=20.0)
    assert [round(walking_times[i], 3) for i in _frames(sampled)] == [float(s) for s in range(10, 20)]
    # Shard ids are stable for one selection and differ for another (their frames are in the id).
    assert [s.shard_id for s in plan(sources, **common, start_s=10.0, end_s=20.0)[0]] == [s.shard_id for s in windowed]
    assert not {s.shard_id for s in windowed} & {s.shard_id for s in sampled}


def test_a_video_with_a_latin1_name_is_planned(tmp_path, media_dir):
    name = os.path.join(os.fsencode(tmp_path), b"clip-\xe9.mp4")
    shutil.copy(media_dir / "video" / FIVE, os.fsdecode(name))
    sources, errors = list_sources([str(tmp_path)])
    assert not errors and sources[0].uri == f"{tmp_path}/clip-%E9.mp4"
    shards, plan_errors = plan(sources, images_per_shard=4, frames_per_shard=2, frame_step=1, model_id="m@1",
                               config_id="c1", end_s=0.1)
    assert not plan_errors
    times = _timestamps(media_dir / "video" / FIVE)
    assert _frames(shards) == [i for i, t in enumerate(times) if t < 0.1] and len(times) == 5
