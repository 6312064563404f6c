"""Small picklable records handed between the job's stages (no Ray, no torch)."""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline.video.shards import FrameRange


@dataclass(frozen=True)
class Source:
    """One input file. uri: fsspec form ("s3://b/k" or an absolute local path), valid UTF-8 (what the
    tables store); kind: "image"/"video"; size in bytes; etag: object-store ETag or local mtime;
    source_id: 16-hex hash of uri, size, etag; open_path: what to open the file with (fsspec), equal
    to uri except for local names that are not valid UTF-8 (see pipeline.job.listing.local_uri).
    member: where the bytes are inside a container (pipeline.job.containers), "" for a plain file;
    extra: (column, value) pairs a manifest row carries into the frames table."""

    uri: str
    kind: str
    size: int
    etag: str
    source_id: str
    open_path: str = ""
    member: str = ""
    extra: tuple = ()

    def __post_init__(self) -> None:
        if not self.open_path:
            object.__setattr__(self, "open_path", self.uri)


@dataclass(frozen=True)
class Shard:
    """The unit of work, output and resume: some images, or one frame range of one video.

    shard_id: 16-hex hash of the sources (uri, size, etag), frame range, model id and config id.
    video_info: the pipeline.video.VideoInfo used for planning (saves each shard a demux pass).
    covers: for a video shard, the half-open frame-index interval [lo, hi) whose earlier rows its
        commit replaces (None = unbounded: the first shard of a video covers everything before
        it, the last everything after it), so any shard split replaces every old row exactly once.
    """

    shard_id: str
    kind: str  # "images" | "video"
    sources: tuple[Source, ...]
    frames: FrameRange | None = None
    video_info: Any = field(default=None, compare=False, repr=False)
    covers: tuple[int | None, int | None] = (None, None)


@dataclass
class ErrorRecord:
    """One row of the ``errors`` table (see schemas/errors.v1.json)."""

    input: str
    stage: str
    error_type: str
    message: str
    shard_id: str | None = None
    attempts: int = 1
    time_utc: _dt.datetime = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc))
    frame_index: int | None = 0
    retryable: bool = False

    @classmethod
    def from_exception(cls, input: str, stage: str, exc: BaseException, message: str | None = None,
                       shard_id: str | None = None, attempts: int = 1, frame_index: int | None = 0) -> "ErrorRecord":
        """The row for ``exc``; ``retryable`` from :func:`pipeline.job.retry.is_transient`."""
        from pipeline.job.retry import is_transient

        return cls(input=input, stage=stage, error_type=type(exc).__name__,
                   message=message or f"{input}: {exc}", shard_id=shard_id, attempts=attempts,
                   frame_index=frame_index, retryable=is_transient(exc))


@dataclass(frozen=True)
class FrameMeta:
    """One decoded frame: where it came from and its original size in pixels (after rotation/EXIF
    orientation). pixel_scale: the frame was decoded at 1/pixel_scale size (JPEG reduced decoding);
    decoded pixel x maps to original pixel x * pixel_scale + (pixel_scale - 1) / 2.
    extra: the source's pass-through (column, value) pairs (from a manifest)."""

    source_uri: str
    source_id: str
    frame_index: int
    timestamp_s: float | None
    width: int
    height: int
    pixel_scale: int = 1
    extra: tuple = ()


@dataclass
class DecodedShard:
    """A shard's decoded frames: images[i] is uint8 BGR [H, W, 3] for frames[i]; errors per bad input.

    passes: when the decode worker also preprocessed, the network inputs ``[pass][image]`` (see
    pipeline.models.inference.prepare_passes) and ``images`` is empty (raw pixels are not shipped).
    """

    shard: Shard
    frames: list[FrameMeta]
    images: list[np.ndarray]
    errors: list[ErrorRecord]
    seconds: float = 0.0
    passes: list | None = None


@dataclass
class CandidateShard:
    """A shard after the network: per frame the parser's compact limb candidates (no full maps)."""

    shard: Shard
    frames: list[FrameMeta]
    candidates: list[Any]
    errors: list[ErrorRecord]
    decode_seconds: float = 0.0
    network_seconds: float = 0.0
    candidate_seconds: float = 0.0


@dataclass
class ShardResult:
    """What a committed shard reports to the driver (its shard_log rows hold the same and more).

    status: "done", or "pending" when a retryable failure is left; pending: retryable errors;
    seconds: worker seconds per stage ("decode", "network", "parse", "write")."""

    shard_id: str
    status: str
    frames: int = 0
    people: int = 0
    errors: int = 0
    pending: int = 0
    seconds: dict = field(default_factory=dict)
