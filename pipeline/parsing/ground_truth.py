"""Ground-truth PAF maps rendered from known skeletons (the paper's training targets).

Used by the parser's tests and by the job's end-to-end test as a stand-in network output.
"""
from __future__ import annotations

import math

import numpy as np

from pipeline.fields import PoseFields
from pipeline.skeleton import BACKGROUND_CHANNEL, LIMBS, NUM_HEATMAPS, NUM_KEYPOINTS, NUM_PAFS, PAF_CHANNELS


def render_fields(skeletons, image_size: tuple[int, int], stride: int = 8, sigma: float = 7.0,
                  paf_width: float = 8.0, scale: tuple[float, float] | None = None,
                  offset: tuple[float, float] | None = None) -> PoseFields:
    """Render the paper's ground-truth confidence maps and PAFs for known people.

    skeletons:  float [P, 18, 3] per COCO-18 keypoint (x, y, visibility) in original-image pixels
                (pixel centres at integers); visibility > 0 means the part is present.
    image_size: (width, height) of the original image in pixels. The maps have
                ceil(height / stride) x ceil(width / stride) cells.
    sigma:      Gaussian spread of each part's peak, in pixels (OpenPose trains with 7).
    paf_width:  limb half-width sigma_l in pixels: a map cell belongs to a limb when its centre
                lies within paf_width of the segment between the two parts (the paper's
                rectangle, with ends rounded by the same width as OpenPose's generator does, so
                limbs shorter than a cell still show up).
    scale, offset: cell -> pixel mapping (see ``PoseFields``); default (stride, stride) and
                ((stride - 1) / 2, (stride - 1) / 2): cell (i, j) covers pixels
                [j*stride, (j+1)*stride) horizontally, like an OpenCV resize by the stride.

    Returns PoseFields with float32 heatmaps [19, H, W] (channel p = max over people of
    exp(-d^2 / 2 sigma^2); channel 18 = clip(1 - max over parts, 0, 1)) and pafs [38, H, W]
    (unit vector of each limb, averaged over the people whose limb covers the cell).
    """
    sk = np.asarray(skeletons, dtype=np.float64)
    if sk.ndim == 2 and sk.size == 0:
        sk = sk.reshape(0, NUM_KEYPOINTS, 3)
    if sk.ndim != 3 or sk.shape[1:] != (NUM_KEYPOINTS, 3):
        raise ValueError(f"skeletons must be [P, {NUM_KEYPOINTS}, 3] (x, y, visibility), got {sk.shape}")
    width, height = int(image_size[0]), int(image_size[1])
    if width < 1 or height < 1 or stride < 1:
        raise ValueError(f"image_size {image_size} and stride {stride} must be positive")
    if sigma <= 0 or paf_width <= 0:
        raise ValueError(f"sigma ({sigma}) and paf_width ({paf_width}) must be positive pixels")
    sx, sy = scale if scale is not None else (float(stride), float(stride))
    ox, oy = offset if offset is not None else ((stride - 1) / 2.0, (stride - 1) / 2.0)
    rows, cols = math.ceil(height / stride), math.ceil(width / stride)
    px = (np.arange(cols) * sx + ox)[None, :]  # [1, W] pixel x of cell centres
    py = (np.arange(rows) * sy + oy)[:, None]  # [H, 1]

    heatmaps = np.zeros((NUM_HEATMAPS, rows, cols), np.float64)
    for person in sk:
        for part in np.flatnonzero(person[:, 2] > 0):
            x, y = person[part, :2]
            g = np.exp(-((px - x) ** 2 + (py - y) ** 2) / (2.0 * sigma ** 2))
            np.maximum(heatmaps[part], g, out=heatmaps[part])
    heatmaps[BACKGROUND_CHANNEL] = np.clip(1.0 - heatmaps[:NUM_KEYPOINTS].max(axis=0), 0.0, 1.0)

    pafs = np.zeros((NUM_PAFS, rows, cols), np.float64)
    for (a, b), (cx, cy) in zip(LIMBS, PAF_CHANNELS):
        count = np.zeros((rows, cols), np.float64)
        for person in sk:
            if person[a, 2] <= 0 or person[b, 2] <= 0:
                continue
            d = person[b, :2] - person[a, :2]
            length = float(np.hypot(*d))
            if length == 0.0:
                continue
            u = d / length
            rx, ry = px - person[a, 0], py - person[a, 1]
            along = np.clip(rx * u[0] + ry * u[1], 0.0, length)
            on = (rx - along * u[0]) ** 2 + (ry - along * u[1]) ** 2 <= paf_width ** 2
            pafs[cx][on] += u[0]
            pafs[cy][on] += u[1]
            count += on
        covered = count > 0
        pafs[cx][covered] /= count[covered]
        pafs[cy][covered] /= count[covered]
    return PoseFields(heatmaps=heatmaps.astype(np.float32), pafs=pafs.astype(np.float32),
                      scale=(float(sx), float(sy)), offset=(float(ox), float(oy)),
                      image_size=(width, height))
