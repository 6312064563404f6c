"""People found in one image: the parser's output and the job's input for the `poses` table."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.skeleton import NUM_KEYPOINTS


@dataclass(frozen=True)
class Poses:
    """P people in one image, in original-image pixels (pixel centres at integer coordinates).

    keypoints: float32 [P, 18, 3] per COCO-18 keypoint (x, y, score); a missing keypoint has
               x = y = NaN and score 0.
    scores:    float32 [P] per-person score (higher is more confident).
    """

    keypoints: np.ndarray
    scores: np.ndarray

    def __post_init__(self) -> None:
        if self.keypoints.ndim != 3 or self.keypoints.shape[1:] != (NUM_KEYPOINTS, 3):
            raise ValueError(f"keypoints must be [P, {NUM_KEYPOINTS}, 3], got {self.keypoints.shape}")
        if self.scores.shape != (self.keypoints.shape[0],):
            raise ValueError(f"scores must be [{self.keypoints.shape[0]}], got {self.scores.shape}")

    @classmethod
    def empty(cls) -> "Poses":
        return cls(np.zeros((0, NUM_KEYPOINTS, 3), np.float32), np.zeros((0,), np.float32))

    def __len__(self) -> int:
        return int(self.keypoints.shape[0])

    def bboxes(self) -> np.ndarray:
        """float32 [P, 4] (x, y, width, height) in pixels around each person's found keypoints."""
        out = np.zeros((len(self), 4), np.float32)
        for p in range(len(self)):
            xy = self.keypoints[p, :, :2]
            xy = xy[np.isfinite(xy).all(axis=1)]
            if len(xy):
                lo, hi = xy.min(axis=0), xy.max(axis=0)
                out[p] = (lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1])
        return out
