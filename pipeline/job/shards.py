"""Deterministic sharding: N images per shard, or one frame range of one video per shard.

Shard ids hash the sources (URI, size, ETag/mtime), the frame range, the model id and the config
id, so a re-run of the same job over unchanged inputs finds the shards it already finished.
"""
from __future__ import annotations

import functools
import hashlib
import json
from typing import Any, Callable, Iterable, Mapping, Sequence

from pipeline.job.records import ErrorRecord, FrameRange, Shard, Source
from pipeline.storage import describe_error, filesystem


def shard_id(sources: Sequence[Source], frames: FrameRange | None, model_id: str, config_id: str) -> str:
    """16-hex id of a shard holding ``sources`` (and ``frames`` of a video) for this model and config."""
    payload = {
        "model_id": model_id, "config_id": config_id,
        "sources": [[s.uri, s.size, s.etag] for s in sources],
        "frames": None if frames is None else frames.frames(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def image_shards(images: Sequence[Source], images_per_shard: int, model_id: str, config_id: str) -> list[Shard]:
    """Consecutive groups of ``images_per_shard`` images (in the given, sorted, order)."""
    out = []
    for i in range(0, len(images), images_per_shard):
        group = tuple(images[i:i + images_per_shard])
        out.append(Shard(shard_id(group, None, model_id, config_id), "images", group))
    return out


def video_shards(video: Source, frames_per_shard: int, frame_step: int, model_id: str, config_id: str,
                 storage_options: Mapping[str, Any] | None = None, *, target_fps: float | None = None,
                 start_s: float | None = None, end_s: float | None = None) -> list[Shard]:
    """One shard per frame range of ``video`` as planned by pipeline.video.plan_shards; consecutive
    shards cover adjacent frame intervals (the first and last open-ended, see Shard.covers).

    target_fps, start_s, end_s: frame selection by timestamp (JobSpec settings of those names,
    see pipeline.video.select_frames). Reads the container header (pipeline.video.probe) through
    ``video.open_path``; raises on an unreadable video.
    """
    from pipeline import video as pv

    fs, path = filesystem(video.open_path, storage_options)
    with fs.open(path, "rb") as f:
        info = pv.probe(f)
    if info.num_frames == 0:
        raise pv.VideoDecodeError(f"{video.uri}: the video stream holds no frames (an empty or unfinished "
                                  "recording); re-export it, or remove it from the input")
    ranges = pv.plan_shards(info, frames_per_shard, every_k=frame_step, target_fps=target_fps,
                            start_s=start_s, end_s=end_s)
    return [Shard(shard_id((video,), fr, model_id, config_id), "video", (video,), fr, info,
                  covers=(None if i == 0 else fr.start, None if i == len(ranges) - 1 else ranges[i + 1].start))
            for i, fr in enumerate(ranges)]


def _plan_video(video: Source, frames_per_shard: int, frame_step: int, model_id: str, config_id: str,
                storage_options: Mapping[str, Any] | None, **selection) -> tuple[list[Shard], list[ErrorRecord]]:
    """(shards, []) of one video, or ([], [error]) when its container cannot be read;
    ``selection``: target_fps / start_s / end_s of video_shards."""
    try:
        return video_shards(video, frames_per_shard, frame_step, model_id, config_id, storage_options,
                            **selection), []
    except ImportError:
        raise
    except Exception as exc:  # noqa: BLE001 - an unreadable video is an errors row, the job goes on
        msg = describe_error(video.uri, exc) if isinstance(exc, (FileNotFoundError, PermissionError)) else (
            f"{video.uri}: cannot read the video container ({type(exc).__name__}: {exc}); "
            "check that the file is a complete, playable video")
        return [], [ErrorRecord.from_exception(video.uri, "read", exc, msg)]


def plan(sources: Sequence[Source], *, images_per_shard: int, frames_per_shard: int, frame_step: int,
         model_id: str, config_id: str, storage_options: Mapping[str, Any] | None = None,
         target_fps: float | None = None, start_s: float | None = None, end_s: float | None = None,
         map_fn: Callable[[Callable, list], Iterable] = map) -> tuple[list[Shard], list[ErrorRecord]]:
    """All shards of a job (image shards first, then each video's) and errors for unreadable videos.

    target_fps, start_s, end_s: which video frames (the JobSpec settings of those names).

    map_fn(fn, videos) runs the per-video probing (a full demux pass each); pass a parallel map
    (the job uses Ray tasks) to probe many videos at once.
    """
    images = [s for s in sources if s.kind == "image"]
    shards = image_shards(images, images_per_shard, model_id, config_id)
    errors: list[ErrorRecord] = []
    probe_one = functools.partial(_plan_video, frames_per_shard=frames_per_shard, frame_step=frame_step,
                                  model_id=model_id, config_id=config_id, storage_options=storage_options,
                                  target_fps=target_fps, start_s=start_s, end_s=end_s)
    for video_shards_, video_errors in map_fn(probe_one, [s for s in sources if s.kind == "video"]):
        shards.extend(video_shards_)
        errors.extend(video_errors)
    return shards, errors
