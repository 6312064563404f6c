"""The ``openpose-json`` export: exactly what OpenPose's ``--write_json`` writes, one file per frame.

File names: ``<stem>_keypoints.json`` for an image, ``<stem>/<name>_<frame:012d>_keypoints.json``
for each processed frame of a video (one folder per video), where stem is the source's path
relative to the export folder (pipeline.export.sources.export_stems) and name its last part.

Content (OpenPose 1.3 layout)::

    {"version": 1.3, "people": [{"person_id": [track id or -1], "pose_keypoints_2d": [x, y, c, ...],
      "face_keypoints_2d": [], "hand_left_keypoints_2d": [], "hand_right_keypoints_2d": [],
      "pose_keypoints_3d": [], "face_keypoints_3d": [], "hand_left_keypoints_3d": [],
      "hand_right_keypoints_3d": []}, ...]}

People in person_index order; a frame with nobody has ``"people": []``. A missing part is 0, 0, 0.
"""
from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.export.sources import FramePeople, SourceRows
from pipeline.skeleton import KEYPOINTS

#: OpenPose BODY_25 part names, in its order.
BODY25_KEYPOINTS: tuple[str, ...] = (
    "nose", "neck", "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow", "l_wrist", "mid_hip",
    "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "r_eye", "l_eye", "r_ear", "l_ear",
    "l_big_toe", "l_small_toe", "l_heel", "r_big_toe", "r_small_toe", "r_heel",
)
#: --keypoint_scale values OpenPose accepts for original-image outputs, by our name.
KEYPOINT_SCALES = {"pixels": 0, "unit": 3, "signed-unit": 4}
LAYOUTS = ("coco18", "body25")
_EMPTY_PARTS = ("face_keypoints_2d", "hand_left_keypoints_2d", "hand_right_keypoints_2d", "pose_keypoints_3d",
                "face_keypoints_3d", "hand_left_keypoints_3d", "hand_right_keypoints_3d")


def body25_from_coco18(keypoints: np.ndarray) -> np.ndarray:
    """float32 [P, 25, 3] BODY_25 keypoints from float [P, 18, 3] COCO-18 ones (missing: 0, 0, 0).

    Parts with a COCO-18 twin are copied; mid-hip is the midpoint of the two hips with the lower
    hip score, when both hips are found (else missing); the six foot parts are missing (0, 0, 0).
    """
    kp = _zeroed(keypoints)
    out = np.zeros((len(kp), len(BODY25_KEYPOINTS), 3), np.float32)
    for i, name in enumerate(BODY25_KEYPOINTS):
        if name in KEYPOINTS:
            out[:, i] = kp[:, KEYPOINTS.index(name)]
    r, l = kp[:, KEYPOINTS.index("r_hip")], kp[:, KEYPOINTS.index("l_hip")]
    both = (r[:, 2] > 0) & (l[:, 2] > 0)
    mid = BODY25_KEYPOINTS.index("mid_hip")
    out[both, mid, :2] = (r[both, :2] + l[both, :2]) / 2
    out[both, mid, 2] = np.minimum(r[both, 2], l[both, 2])
    return out


def scale_keypoints(keypoints: np.ndarray, width: int, height: int, keypoint_scale: str) -> np.ndarray:
    """``keypoints`` [P, K, 3] (pixels) in the coordinates of OpenPose's ``--keypoint_scale``.

    "pixels" (0): unchanged; "unit" (3): x / (width - 1), y / (height - 1), so [0, 1] from the
    first to the last pixel centre; "signed-unit" (4): 2 x / (width - 1) - 1, likewise in [-1, 1].
    As in OpenPose (core/keypointScaler.cpp) the scaling applies to every part, missing ones too:
    with "signed-unit" a missing part is written as -1, -1, 0. Computed in float32 as OpenPose does.
    """
    if keypoint_scale not in KEYPOINT_SCALES:
        raise ValueError(f"keypoint_scale {keypoint_scale!r} is not one of {sorted(KEYPOINT_SCALES)}")
    out = np.array(keypoints, np.float32)
    if keypoint_scale == "pixels":
        return out
    factor = np.float32(1.0 if keypoint_scale == "unit" else 2.0)
    sx, sy = factor / (np.float32(width) - np.float32(1)), factor / (np.float32(height) - np.float32(1))
    offset = np.float32(0.0 if keypoint_scale == "unit" else -1.0)
    out[..., 0] = out[..., 0] * sx + offset
    out[..., 1] = out[..., 1] * sy + offset
    return out


def frame_json(frame: FramePeople, layout: str = "coco18", keypoint_scale: str = "pixels") -> dict:
    """The OpenPose JSON object of one frame (see the module docstring)."""
    kp = _zeroed(frame.keypoints) if layout == "coco18" else body25_from_coco18(frame.keypoints)
    kp = scale_keypoints(kp, frame.width, frame.height, keypoint_scale)
    people = []
    for track, person in zip(frame.track_ids, kp):
        entry = {"person_id": [int(track)], "pose_keypoints_2d": [_shortest(v) for v in person.reshape(-1)]}
        entry.update({name: [] for name in _EMPTY_PARTS})
        people.append(entry)
    return {"version": 1.3, "people": people}


@dataclass(frozen=True)
class OpenPoseJson:
    """The openpose-json format. layout: "coco18" (default, OpenPose's COCO model order) or
    "body25"; keypoint_scale: "pixels" (default), "unit" ([0, 1]) or "signed-unit" ([-1, 1])."""

    layout: str = "coco18"
    keypoint_scale: str = "pixels"

    name = "openpose-json"
    per_source = True

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"openpose-json: layout {self.layout!r} is not one of {list(LAYOUTS)}")
        if self.keypoint_scale not in KEYPOINT_SCALES:
            raise ValueError(f"openpose-json: keypoint_scale {self.keypoint_scale!r} is not one of "
                             f"{list(KEYPOINT_SCALES)}")

    def files(self, sources: list[SourceRows], part_id: str,
              storage_options: Mapping[str, Any] | None = None) -> Iterator[tuple[str, bytes]]:
        """(relative path, JSON bytes) of every frame of ``sources`` (no pixels are read)."""
        for source in sources:
            for frame in source.iter_frames():
                data = frame_json(frame, self.layout, self.keypoint_scale)
                yield source.frame_file(frame.frame_index, "_keypoints.json"), json.dumps(data).encode()


def _zeroed(keypoints: np.ndarray) -> np.ndarray:
    """float32 copy of [P, K, 3] keypoints with missing parts (NaN or score <= 0) as 0, 0, 0."""
    kp = np.array(keypoints, np.float32)
    missing = ~np.isfinite(kp[..., :2]).all(axis=-1) | ~(kp[..., 2] > 0)
    kp[missing] = 0.0
    return kp


def _shortest(value: np.float32) -> float:
    """The shortest decimal that reads back as the same float32 (123.456, not 123.45600128173828)."""
    return float(str(value))
