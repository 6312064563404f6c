"""Drawing poses on images (OpenCV) and writing rendered frames to an .mp4 (PyAV) or image files."""
from __future__ import annotations

import colorsys
import os
from collections.abc import Iterable
from fractions import Fraction

import av
import cv2
import numpy as np

from pipeline.skeleton import LIMBS, NUM_KEYPOINTS

#: Limbs drawn: skeleton.LIMBS without the last two (ear-shoulder), which OpenPose adds only
#: as redundant connections for parsing and never draws.
DRAWN_LIMBS: tuple[tuple[int, int], ...] = LIMBS[:-2]
_TIME_BASE = Fraction(1, 90000)


def track_colour(track_id: int | None) -> tuple[int, int, int]:
    """A stable, well-separated BGR colour for `track_id` (golden-ratio hue steps); grey for None."""
    if track_id is None or (isinstance(track_id, float) and np.isnan(track_id)):
        return (200, 200, 200)
    hue = (int(track_id) * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 1.0)
    return (int(b * 255), int(g * 255), int(r * 255))


def draw_poses(image: np.ndarray, keypoints: np.ndarray, track_ids: Iterable | None = None,
               min_score: float = 0.0, thickness: int | None = None) -> np.ndarray:
    """A copy of `image` (uint8 [H, W, 3] BGR) with P poses drawn.

    keypoints: [P, 18, 3] or [P, 54] (x, y, score in pixels; NaN / score 0 = missing).
    track_ids: P ids (colour per track, id written at the neck/head) or None (colour per person).
    Keypoints with score <= min_score are not drawn; limbs need both ends.
    """
    out = np.ascontiguousarray(image).copy()
    kps = np.asarray(keypoints, np.float64).reshape(-1, NUM_KEYPOINTS, 3)
    ids = list(track_ids) if track_ids is not None else list(range(len(kps)))
    t = thickness or max(1, round(min(out.shape[:2]) / 240))
    for person, tid in zip(kps, ids):
        colour = track_colour(tid)
        ok = np.isfinite(person[:, :2]).all(1) & (person[:, 2] > min_score)
        pts = np.round(np.nan_to_num(person[:, :2])).astype(np.int32)
        for a, b in DRAWN_LIMBS:
            if ok[a] and ok[b]:
                cv2.line(out, tuple(pts[a]), tuple(pts[b]), colour, t, cv2.LINE_AA)
        for k in np.flatnonzero(ok):
            cv2.circle(out, tuple(pts[k]), t + 1, colour, -1, cv2.LINE_AA)
            cv2.circle(out, tuple(pts[k]), t + 1, (0, 0, 0), 1, cv2.LINE_AA)
        if track_ids is not None and ok.any():
            anchor = pts[1] if ok[1] else pts[np.flatnonzero(ok)[0]]
            cv2.putText(out, str(tid), (int(anchor[0]) + 4, int(anchor[1]) - 4),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.4 * t + 0.2, colour, t, cv2.LINE_AA)
    return out


class VideoWriter:
    """Write BGR frames with their timestamps (seconds) to an H.264 .mp4 via PyAV.

    Frames must share one size; odd widths/heights are padded by one black pixel (yuv420p).
    Use as a context manager; timestamps are kept, so variable frame rate survives.
    """

    def __init__(self, path: str | os.PathLike, fps: float = 25.0, crf: int = 20):
        self.path, self.fps, self.crf = os.fspath(path), fps, crf
        self._container = None
        self._stream = None
        self._last_pts = -1

    def __enter__(self) -> "VideoWriter":
        return self

    def write(self, image: np.ndarray, timestamp_s: float) -> None:
        h, w = image.shape[:2]
        if self._container is None:
            self._container = av.open(self.path, "w")
            self._stream = self._container.add_stream(
                "libx264", rate=Fraction(self.fps).limit_denominator(1001))
            self._stream.width, self._stream.height = w + w % 2, h + h % 2
            self._stream.pix_fmt = "yuv420p"
            self._stream.codec_context.time_base = _TIME_BASE
            self._stream.options = {"crf": str(self.crf)}
        if (w + w % 2, h + h % 2) != (self._stream.width, self._stream.height):
            raise ValueError(f"{self.path}: frame size {w}x{h} differs from the first frame's")
        if w % 2 or h % 2:
            image = cv2.copyMakeBorder(image, 0, h % 2, 0, w % 2, cv2.BORDER_CONSTANT)
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
        frame.pts = max(int(round(timestamp_s / _TIME_BASE)), self._last_pts + 1)
        frame.time_base = _TIME_BASE
        self._last_pts = frame.pts
        self._container.mux(self._stream.encode(frame))

    def close(self) -> None:
        if self._container is not None:
            self._container.mux(self._stream.encode())
            self._container.close()
            self._container = None

    def __exit__(self, *exc) -> None:
        self.close()
