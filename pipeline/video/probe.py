"""Probing a video: exact frame count and per-frame PTS from the packet index, keyframes, rotation."""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np

from pipeline.video.errors import VideoDecodeError
from pipeline.video.source import VideoSource, open_container, source_name


@dataclass(frozen=True)
class VideoInfo:
    """What `probe` learns about the first video stream of a source.

    num_frames: exact number of frames, counted from the demuxed packets (not duration * fps).
    fps:        average frame rate (frames per second).
    duration_s: stream duration in seconds.
    width, height: frame size in pixels AFTER rotation is applied (what iter_frames yields).
    rotation:   clockwise degrees (0, 90, 180, 270) the decoded picture is turned for display,
                from the display-matrix side data (or a legacy 'rotate' tag).
    keyframes:  frame indices of keyframes (cheap seek targets), ascending, in frame-index order.
    time_base:  seconds per PTS tick of the stream.
    codec:      decoder name, e.g. "h264".
    frame_pts:  PTS (in time_base ticks) of every frame; frame index i is the i-th smallest PTS,
                i.e. frames are indexed in presentation order.
    start_pts:  PTS of the stream start; timestamp_s = (pts - start_pts) * time_base.
    """

    num_frames: int
    fps: float
    duration_s: float
    width: int
    height: int
    rotation: int
    keyframes: tuple[int, ...]
    time_base: Fraction
    codec: str
    frame_pts: tuple[int, ...]
    start_pts: int

    def timestamp_s(self, index: int) -> float:
        """Presentation time of frame `index` in seconds from the stream start."""
        return float((self.frame_pts[index] - self.start_pts) * self.time_base)

    def timestamps_s(self) -> np.ndarray:
        """float64 [num_frames] presentation time of every frame in seconds from the stream start."""
        pts = np.asarray(self.frame_pts, np.int64) - self.start_pts
        return pts.astype(np.float64) * float(self.time_base)


def rotation_of(frame: av.VideoFrame, stream: av.video.stream.VideoStream) -> int:
    """Clockwise display rotation in degrees (0/90/180/270) of `frame`'s stream.

    The display matrix (frame side data) gives a counter-clockwise angle; older files carry a
    clockwise 'rotate' stream tag instead (e.g. Matroska tags), used when no matrix is present.
    """
    ccw = int(round(frame.rotation or 0))
    if ccw:
        return (-ccw) % 360 // 90 * 90
    tags = {k.lower(): v for k, v in (stream.metadata or {}).items()}
    try:
        return int(round(float(tags.get("rotate", 0)))) % 360 // 90 * 90
    except ValueError:
        return 0


def _decode_first(stream, packet: av.Packet | None, name: str) -> av.VideoFrame | None:
    """Feed one packet (None = flush) to the stream's decoder; the first picture out, if any."""
    try:
        return next(iter(stream.codec_context.decode(packet)), None)
    except av.error.FFmpegError as exc:
        raise VideoDecodeError(
            f"{name}: the {stream.codec_context.name} video data cannot be decoded ({exc}); "
            "re-encode it (e.g. `ffmpeg -i IN -c:v libx264 OUT.mp4`)") from exc


def probe(src: VideoSource) -> VideoInfo:
    """Read the packet index of the first video stream of `src` (local path, URI or binary file).

    Demuxes every packet to count frames and collect PTS and keyframes, decoding only until the
    first picture comes out (to check the stream is decodable and read its rotation).
    Raises VideoDecodeError for non-media bytes, files without a video stream, zero frames,
    truncated files (fewer packets than the container's index declares) and undecodable data.
    """
    name = source_name(src)
    with open_container(src) as container:
        if not container.streams.video:
            kinds = ", ".join(s.type for s in container.streams) or "none"
            raise VideoDecodeError(
                f"{name}: has no video stream (streams: {kinds}); pass a video file, or list "
                "images/audio separately")
        stream = container.streams.video[0]
        pts: list[int] = []
        key_pts: list[int] = []
        first = None
        try:
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue
                ts = packet.pts if packet.pts is not None else packet.dts
                if ts is None:
                    raise VideoDecodeError(
                        f"{name}: video packets carry no timestamps; remux it with "
                        "`ffmpeg -fflags +genpts -i IN -c copy OUT.mp4`")
                pts.append(ts)
                if packet.is_keyframe:
                    key_pts.append(ts)
                if first is None:
                    first = _decode_first(stream, packet, name)
        except av.error.FFmpegError as exc:
            raise VideoDecodeError(
                f"{name}: demuxing stopped after {len(pts)} packets ({exc}); the file is truncated "
                "or corrupt: re-copy it from the original") from exc
        if first is None and pts:
            first = _decode_first(stream, None, name)
        declared = stream.frames or 0
        if not pts:
            raise VideoDecodeError(
                f"{name}: the video stream has zero frames; nothing to process (skip this file)")
        if declared and len(pts) < declared:
            raise VideoDecodeError(
                f"{name}: truncated: the container index lists {declared} frames but only "
                f"{len(pts)} could be read; re-copy or re-download the file")
        if len(set(pts)) != len(pts):
            raise VideoDecodeError(
                f"{name}: several frames share one timestamp; remux it with "
                "`ffmpeg -fflags +genpts -i IN -c copy OUT.mp4`")
        if first is None:
            raise VideoDecodeError(
                f"{name}: no picture could be decoded from the {stream.codec_context.name} stream; "
                "re-encode it (e.g. `ffmpeg -i IN -c:v libx264 OUT.mp4`)")
        rotation = rotation_of(first, stream)
        order = sorted(pts)
        index_of = {p: i for i, p in enumerate(order)}
        time_base = stream.time_base or Fraction(1, 1)
        start_pts = stream.start_time if stream.start_time is not None else order[0]
        if stream.duration:
            duration_s = float(stream.duration * time_base)
        else:
            step = (order[-1] - order[0]) / max(len(order) - 1, 1)
            duration_s = float((order[-1] - order[0] + step) * time_base)
        if stream.average_rate:
            fps = float(stream.average_rate)
        else:
            fps = len(order) / duration_s if duration_s > 0 else 0.0
        width, height = first.width, first.height
        if rotation in (90, 270):
            width, height = height, width
        return VideoInfo(
            num_frames=len(order), fps=fps, duration_s=duration_s, width=width, height=height,
            rotation=rotation, keyframes=tuple(sorted(index_of[p] for p in key_pts)),
            time_base=Fraction(time_base), codec=stream.codec_context.name,
            frame_pts=tuple(order), start_pts=int(start_pts))
