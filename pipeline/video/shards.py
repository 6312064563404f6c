"""Choosing frames (every k-th or a target fps) and splitting a video into keyframe-aligned shards."""
from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np

from pipeline.video.probe import VideoInfo


@dataclass(frozen=True)
class FrameRange:
    """Frames [start, stop) of one video taken every `step` frames, or exactly `indices`.

    Frame indices are 0-based, in presentation order (see VideoInfo.frame_pts). `indices`, when
    given, lists the chosen frames (ascending, within [start, stop)) and overrides `step`; it is
    how a target-fps selection (chosen by timestamp) travels.
    """

    start: int
    stop: int
    step: int = 1
    indices: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.start < 0 or self.stop < self.start or self.step < 1:
            raise ValueError(f"bad FrameRange({self.start}, {self.stop}, {self.step})")
        if self.indices is not None:
            idx = self.indices
            if any(b <= a for a, b in zip(idx, idx[1:])) or (
                    idx and (idx[0] < self.start or idx[-1] >= self.stop)):
                raise ValueError(f"FrameRange indices must ascend within [{self.start}, {self.stop})")

    def frames(self) -> list[int]:
        """The chosen frame indices, ascending."""
        if self.indices is not None:
            return list(self.indices)
        return list(range(self.start, self.stop, self.step))

    def __len__(self) -> int:
        return len(self.indices) if self.indices is not None else len(
            range(self.start, self.stop, self.step))


def select_frames(info: VideoInfo, every_k: int = 1, target_fps: float | None = None,
                  start_s: float | None = None, end_s: float | None = None) -> list[int]:
    """Frame indices to process for the whole video.

    every_k:    every k-th frame by index, counted from the first frame of the window.
    target_fps: instead, by timestamp: the first frame in each 1/target_fps-second bucket of
                presentation time, so variable-frame-rate video is sampled evenly in time.
    start_s, end_s: the time window, seconds of presentation time: only frames with
                start_s <= timestamp < end_s (None = from the start / to the end).
    """
    if start_s is not None and end_s is not None and not end_s > start_s:
        raise ValueError(f"end_s ({end_s}) must be greater than start_s ({start_s})")
    window = np.arange(info.num_frames)
    if start_s is not None or end_s is not None:
        t = info.timestamps_s()
        inside = np.ones(info.num_frames, bool)
        if start_s is not None:
            inside &= t >= start_s - 1e-9
        if end_s is not None:
            inside &= t < end_s - 1e-9
        window = np.flatnonzero(inside)
    if target_fps is not None:
        if every_k != 1:
            raise ValueError("give every_k or target_fps, not both")
        if not target_fps > 0:
            raise ValueError(f"target_fps must be > 0, got {target_fps}")
        buckets = np.floor(info.timestamps_s()[window] * target_fps + 1e-6).astype(np.int64)
        keep = np.ones(len(window), bool)
        keep[1:] = buckets[1:] > np.maximum.accumulate(buckets)[:-1]
        return window[keep].tolist()
    if every_k < 1:
        raise ValueError(f"every_k must be >= 1, got {every_k}")
    return window[::every_k].tolist()


def _cut_points(info: VideoInfo, selected: list[int], frames_per_shard: int) -> list[int]:
    """Shard boundaries (frame indices, first 0, last num_frames), at keyframes where possible.

    A shard ends at the first keyframe after it has `frames_per_shard` selected frames. Where the
    next keyframe is more than twice that far, the cut falls mid-GOP (iter_frames then decodes
    from the previous keyframe, which costs time but not correctness).
    """
    n = info.num_frames
    keyframes = [k for k in info.keyframes if 0 < k < n]
    cuts = [0]
    while True:
        done = bisect.bisect_left(selected, cuts[-1])
        if done + frames_per_shard >= len(selected):
            break
        target = selected[done + frames_per_shard]
        pos = bisect.bisect_left(keyframes, target)
        nxt = keyframes[pos] if pos < len(keyframes) else n
        if nxt - cuts[-1] > 2 * (target - cuts[-1]):
            nxt = target
        if nxt >= n:
            break
        cuts.append(nxt)
    cuts.append(n)
    return cuts


def plan_shards(info: VideoInfo, frames_per_shard: int = 256, every_k: int = 1,
                target_fps: float | None = None, start_s: float | None = None,
                end_s: float | None = None) -> list[FrameRange]:
    """Split the chosen frames of a video into FrameRanges of about `frames_per_shard` frames.

    Boundaries sit on keyframes (each shard seeks cheaply); the selection is made once for the
    whole video, so the union of the shards is exactly
    select_frames(info, every_k, target_fps, start_s, end_s) however the video is split. A range
    is a (start, stop, step) when its frames are exactly that progression, else it lists its
    frames (indices). Shards with no chosen frame are left out.
    """
    if frames_per_shard < 1:
        raise ValueError(f"frames_per_shard must be >= 1, got {frames_per_shard}")
    selected = select_frames(info, every_k, target_fps, start_s, end_s)
    cuts = _cut_points(info, selected, frames_per_shard)
    ranges = []
    for lo, hi in zip(cuts, cuts[1:]):
        chosen = selected[bisect.bisect_left(selected, lo):bisect.bisect_left(selected, hi)]
        if not chosen:
            continue
        if target_fps is None and chosen == list(range(chosen[0], hi, every_k)):
            ranges.append(FrameRange(chosen[0], hi, every_k))
        else:
            ranges.append(FrameRange(chosen[0], chosen[-1] + 1, 1, tuple(chosen)))
    return ranges
