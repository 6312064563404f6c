"""Frame-accurate decoding of a FrameRange: seek to the keyframe before it, decode forward."""
from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass

import av
import cv2
import numpy as np

from pipeline.video.errors import VideoDecodeError
from pipeline.video.probe import VideoInfo, probe
from pipeline.video.shards import FrameRange
from pipeline.video.source import VideoSource, open_container, source_name

_CV2_ROTATE = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}


@dataclass(frozen=True)
class Frame:
    """One decoded video frame.

    index:       0-based frame index in presentation order (see VideoInfo.frame_pts).
    timestamp_s: PTS * time_base in seconds, relative to the stream start.
    image:       uint8 [H, W, 3] BGR with the display rotation applied.
    """

    index: int
    timestamp_s: float
    image: np.ndarray


def rotate_image(image: np.ndarray, rotation: int) -> np.ndarray:
    """Turn `image` clockwise by `rotation` degrees (0, 90, 180 or 270)."""
    return cv2.rotate(image, _CV2_ROTATE[rotation]) if rotation else image


def _decode_from(container, stream, seek_pts: int | None):
    if seek_pts is not None:
        container.seek(seek_pts, stream=stream, backward=True, any_frame=False)
    yield from container.decode(stream)


def iter_frames(src: VideoSource, frame_range: FrameRange, info: VideoInfo | None = None, *,
                threads: bool = True) -> Iterator[Frame]:
    """Decode exactly the frames of `frame_range` from `src`, in index order.

    Seeks to the last keyframe at or before the range start, decodes forward and drops frames
    before the start, so every frame (index, timestamp, pixels) equals the same frame of one
    sequential decode of the whole file. Frames are identified by their PTS, not counted, so
    variable frame rate and B-frame reordering are handled. `info` is the probe result; pass
    the one used for planning to skip a demux pass. `threads` turns on FFmpeg's frame/slice
    threading (thread_type "AUTO", one thread per core); False decodes on one thread.
    Raises VideoDecodeError if the data cannot be decoded or frames of the range are missing.
    """
    info = info or probe(src)
    wanted = frame_range.frames()
    if wanted and (wanted[0] < 0 or wanted[-1] >= info.num_frames):
        raise ValueError(f"{source_name(src)}: frames {wanted[0]}..{wanted[-1]} outside "
                         f"[0, {info.num_frames})")
    if not wanted:
        return
    index_of = {p: i for i, p in enumerate(info.frame_pts)}
    first, last = wanted[0], wanted[-1]
    key_pos = bisect.bisect_right(info.keyframes, first) - 1
    seek_at = info.keyframes[key_pos] if key_pos >= 0 else 0
    # Seeking lands on a keyframe at or before the target; if a demuxer lands after it, fall back
    # to decoding from the start of the file (nothing has been yielded by then).
    attempts = [info.frame_pts[seek_at]] if seek_at > 0 else []
    attempts.append(None)
    name = source_name(src)
    pos = 0
    for seek_pts in attempts:
        with open_container(src) as container:
            stream = container.streams.video[0]
            if threads:
                stream.codec_context.thread_type = "AUTO"
            else:
                stream.codec_context.thread_count = 1
            started = seek_pts is None
            try:
                for frame in _decode_from(container, stream, seek_pts):
                    index = index_of.get(frame.pts)
                    if index is None:
                        raise VideoDecodeError(
                            f"{name}: decoded a frame with PTS {frame.pts} that the packet index "
                            "does not list; remux it with `ffmpeg -i IN -c copy OUT.mp4`")
                    if not started:
                        if index > first:
                            break  # overshot the target: retry from the start of the file
                        started = True
                    if index < wanted[pos]:
                        continue
                    if index > wanted[pos]:
                        break  # a wanted frame never came out of the decoder
                    image = rotate_image(frame.to_ndarray(format="bgr24"), info.rotation)
                    yield Frame(index, info.timestamp_s(index), image)
                    pos += 1
                    if pos == len(wanted):
                        return
            except av.error.FFmpegError as exc:
                raise VideoDecodeError(
                    f"{name}: decoding failed near frame {wanted[pos]} ({exc}); the file is "
                    "corrupt or truncated: re-copy it, or re-encode it with ffmpeg") from exc
            if started:
                break
    raise VideoDecodeError(
        f"{name}: frames {wanted[pos]}..{last} could not be decoded (the decoder stopped "
        "early); the file is corrupt or truncated: re-copy it, or re-encode it with ffmpeg")
