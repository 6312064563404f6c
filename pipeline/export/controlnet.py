"""The ``controlnet`` export: OpenPose pose images as controlnet_aux draws them (the conditioning images
the published ControlNet OpenPose models were trained on), one PNG per frame.

Drawing (controlnet_aux ``open_pose.util.draw_bodypose``, re-implemented with cv2): a black RGB canvas;
per person, in person_index order, the 17 COCO-18 limbs (the two ear-shoulder limbs are not drawn) as
filled ellipses of half-width 4 px along the limb, in the limb's colour at 0.6 brightness, then each
found joint as a filled circle of radius 4 px in its colour. Keypoints are normalised by the source
frame size and multiplied by the canvas size, in float64, with coordinates truncated to integers as
controlnet_aux does, so the images match its output pixel for pixel.

File names: ``<stem>.png`` for an image, ``<stem>/<name>_<frame:012d>.png`` for a video frame.
"""
from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from pipeline.export.sources import SourceRows
from pipeline.skeleton import LIMBS, NUM_KEYPOINTS

#: The 18 RGB colours of controlnet_aux's body drawing: joint k has colour k, limb k colour k.
COLORS: tuple[tuple[int, int, int], ...] = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0), (0, 255, 0),
    (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255), (0, 0, 255), (85, 0, 255),
    (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
)
#: The limbs drawn: OpenPose's first 17 (the redundant ear-shoulder connections are left out).
DRAWN_LIMBS = LIMBS[:17]
LIMB_HALF_WIDTH = 4      # px, the ellipse's minor semi-axis
JOINT_RADIUS = 4         # px
LIMB_BRIGHTNESS = 0.6


def check_resolution(fmt: str, resolution: int | None) -> None:
    """ValueError naming format ``fmt`` unless ``resolution`` is None or an integer >= 64 (short side, px)."""
    if resolution is not None and (not isinstance(resolution, int) or resolution < 64):
        raise ValueError(f"{fmt}: resolution {resolution!r} must be an integer >= 64 (short side in pixels), "
                         "or omitted for each frame's own size")


def canvas_size(width: int, height: int, resolution: int | None) -> tuple[int, int]:
    """(W, H) of the pose image for a ``width`` x ``height`` frame.

    resolution None: the frame's own size. Otherwise controlnet_aux's ``resize_image`` rule: the
    short side scaled to ``resolution``, then both sides rounded to the nearest multiple of 64
    (a 960x540 frame at 512 -> 896x512).
    """
    if resolution is None:
        return int(width), int(height)
    k = float(resolution) / min(float(width), float(height))
    return int(np.round(width * k / 64.0)) * 64, int(np.round(height * k / 64.0)) * 64


def normalised(keypoints: np.ndarray, width: int, height: int) -> list[list[tuple[float, float] | None]]:
    """Per person, per COCO-18 part: (x / width, y / height) as floats, or None when missing
    (NaN or score <= 0), from float [P, 18, 3] pixel keypoints."""
    kp = np.asarray(keypoints, np.float32).reshape(-1, NUM_KEYPOINTS, 3)
    out = []
    for person in kp:
        out.append([(float(x) / float(width), float(y) / float(height))
                    if np.isfinite(x) and np.isfinite(y) and s > 0 else None for x, y, s in person])
    return out


def draw_person(canvas: np.ndarray, parts: list[tuple[float, float] | None]) -> None:
    """Draw one person's limbs, then joints, onto ``canvas`` (uint8 [H, W, 3] RGB, in place).

    parts: 18 normalised (x, y) in [0, 1] (see :func:`normalised`) or None for a missing part.
    """
    h, w = canvas.shape[:2]
    for (a, b), color in zip(DRAWN_LIMBS, COLORS):
        if parts[a] is None or parts[b] is None:
            continue
        xs = np.array([parts[a][0], parts[b][0]]) * float(w)
        ys = np.array([parts[a][1], parts[b][1]]) * float(h)
        dx, dy = xs[0] - xs[1], ys[0] - ys[1]
        half_length = ((dy ** 2 + dx ** 2) ** 0.5) / 2
        centre = (int(np.mean(xs)), int(np.mean(ys)))
        angle = int(math.degrees(math.atan2(dy, dx)))
        outline = cv2.ellipse2Poly(centre, (int(half_length), LIMB_HALF_WIDTH), angle, 0, 360, 1)
        cv2.fillConvexPoly(canvas, outline, [int(float(c) * LIMB_BRIGHTNESS) for c in color])
    for part, color in zip(parts, COLORS):
        if part is not None:
            cv2.circle(canvas, (int(part[0] * w), int(part[1] * h)), JOINT_RADIUS, color, thickness=-1)


def pose_image(keypoints: np.ndarray, width: int, height: int, resolution: int | None = None) -> np.ndarray:
    """uint8 [H, W, 3] RGB pose image of one frame's people (float [P, 18, 3] pixel keypoints of a
    ``width`` x ``height`` frame, person_index order), at :func:`canvas_size`."""
    cw, ch = canvas_size(width, height, resolution)
    canvas = np.zeros((ch, cw, 3), np.uint8)
    for parts in normalised(keypoints, width, height):
        draw_person(canvas, parts)
    return canvas


def encode_png(rgb: np.ndarray) -> bytes:
    """PNG bytes of a uint8 [H, W, 3] RGB image."""
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


@dataclass(frozen=True)
class ControlNet:
    """The controlnet format. resolution: None (each frame's own size) or the short side in pixels
    (see :func:`canvas_size`)."""

    resolution: int | None = None

    name = "controlnet"
    per_source = True

    def __post_init__(self) -> None:
        check_resolution(self.name, self.resolution)

    def files(self, sources: list[SourceRows], part_id: str,
              storage_options: Mapping[str, Any] | None = None) -> Iterator[tuple[str, bytes]]:
        """(relative path, PNG bytes) of every frame of ``sources`` (no pixels are read)."""
        for source in sources:
            for frame in source.iter_frames():
                image = pose_image(frame.keypoints, frame.width, frame.height, self.resolution)
                yield source.frame_file(frame.frame_index, ".png"), encode_png(image)
