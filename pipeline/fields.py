"""The hand-off between a network and the parser: one image's PAF fields (numpy only).

Pixel convention everywhere in posepipe: pixel centres sit at integer coordinates, so the
top-left pixel of an image covers [-0.5, 0.5) x [-0.5, 0.5) and has centre (0, 0).
A map cell (i, j) (row i, column j, stride-8 cells) has its centre at original-image pixel
``(x, y) = (j * scale[0] + offset[0], i * scale[1] + offset[1])``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.skeleton import NUM_HEATMAPS, NUM_PAFS


@dataclass(frozen=True)
class PoseFields:
    """One image's network output, cropped to the valid (unpadded) region.

    heatmaps: float32 [19, H, W] confidence maps (18 COCO-18 parts + background), map cells.
    pafs:     float32 [38, H, W] part affinity fields, channel layout of ``skeleton.PAF_CHANNELS``.
    scale:    (sx, sy) original-image pixels per map cell along x and y.
    offset:   (ox, oy) original-image pixel coordinate of the centre of map cell (0, 0).
    image_size: (width, height) of the original image in pixels.
    """

    heatmaps: np.ndarray
    pafs: np.ndarray
    scale: tuple[float, float]
    offset: tuple[float, float]
    image_size: tuple[int, int]

    def __post_init__(self) -> None:
        hm, pf = self.heatmaps, self.pafs
        if hm.ndim != 3 or hm.shape[0] != NUM_HEATMAPS:
            raise ValueError(f"heatmaps must be [{NUM_HEATMAPS}, H, W], got {hm.shape}")
        if pf.ndim != 3 or pf.shape[0] != NUM_PAFS or pf.shape[1:] != hm.shape[1:]:
            raise ValueError(f"pafs must be [{NUM_PAFS}, {hm.shape[1]}, {hm.shape[2]}], got {pf.shape}")

    def cells_to_pixels(self, xy: np.ndarray) -> np.ndarray:
        """Map [..., 2] (x, y) map-cell coordinates to original-image pixels (same shape)."""
        xy = np.asarray(xy, dtype=np.float64)
        return xy * np.asarray(self.scale) + np.asarray(self.offset)
