"""Helpers shared by the tests and the benchmarks (importable, so neither edits sys.path).

The stand-in network (:class:`RenderedRunner`) returns the maps rendered
(pipeline.parsing.render_fields) from each synthetic image's KNOWN skeletons, so a job's Parquet
poses must equal those skeletons; each synthetic image carries its id in its top-left pixel.
"""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from pipeline.parsing import render_fields
from pipeline.skeleton import NUM_KEYPOINTS

#: A standing person seen from the front, height 1, centred at (0, 0), y down (COCO-18 order).
TEMPLATE = np.array([
    (0.0, -0.40), (0.0, -0.30), (-0.10, -0.29), (-0.13, -0.13), (-0.14, 0.02), (0.10, -0.29),
    (0.13, -0.13), (0.14, 0.02), (-0.06, 0.02), (-0.07, 0.24), (-0.07, 0.45), (0.06, 0.02),
    (0.07, 0.24), (0.07, 0.45), (-0.025, -0.43), (0.025, -0.43), (-0.05, -0.41), (0.05, -0.41),
])


def person(cx: float, cy: float, height: float) -> np.ndarray:
    """float [18, 3] (x, y, visibility 1) of the template person ``height`` pixels tall centred at (cx, cy)."""
    return np.concatenate([TEMPLATE * height + (cx, cy), np.ones((NUM_KEYPOINTS, 1))], axis=1)


def people_for(image_id: int, size: tuple[int, int]) -> np.ndarray:
    """0-3 well separated people for synthetic image ``image_id`` of ``size`` (W, H) -> float [P, 18, 3]."""
    rng = np.random.default_rng(image_id)
    w, h = size
    n = image_id % 4
    out = []
    for k in range(n):
        cx = (k + 0.5) * w / n + rng.uniform(-6, 6)
        out.append(person(cx, h / 2 + rng.uniform(-8, 8), rng.uniform(0.55, 0.8) * h))
    sk = np.stack(out) if out else np.zeros((0, NUM_KEYPOINTS, 3))
    if n == 3:
        sk[1, 10, 2] = sk[1, 10, 0] = sk[1, 10, 1] = 0  # one missing r_ankle
    return sk


def write_image(path: Path, image_id: int, size: tuple[int, int] = (320, 240)) -> np.ndarray:
    """Write a lossless PNG whose top-left pixel encodes ``image_id``; returns its skeletons [P, 18, 3]."""
    w, h = size
    img = np.full((h, w, 3), 90, np.uint8)
    img[0, 0] = (image_id % 256, image_id // 256, 77)
    cv2.imwrite(str(path), img)
    return people_for(image_id, size)


def image_id_of(image: np.ndarray) -> int:
    return int(image[0, 0, 0]) + 256 * int(image[0, 0, 1])


class RenderedRunner:
    """Network stand-in: images -> PoseFields rendered from their known skeletons.

    poison: image ids on which the worker process dies (os._exit), like a segfaulting kernel.
    crash_once: a file path; the first call that finds it missing creates it and kills the process.
    Other keyword arguments (model_name, device, ...) are the job's runner settings, ignored.
    """

    def __init__(self, poison=(), crash_once: str | None = None, **_runner_settings):
        self.poison, self.crash_once = set(poison), crash_once

    def __call__(self, images):
        out = []
        for img in images:
            iid = image_id_of(img)
            if iid in self.poison:
                os._exit(1)
            if self.crash_once and not os.path.exists(self.crash_once):
                Path(self.crash_once).write_text("crashed")
                os._exit(1)
            h, w = img.shape[:2]
            out.append(render_fields(people_for(iid, (w, h)), image_size=(w, h)))
        return out


def check_people(found: np.ndarray, expected: np.ndarray, where: str, tol_px: float = 1.0) -> None:
    """Assert every expected skeleton [P, 18, 3] is one found person (of [P, 18, 3]) with the same
    parts within ``tol_px`` pixels, and missing parts NaN."""
    assert len(found) == len(expected), f"{where}: {len(found)} people found, {len(expected)} expected"
    for sk in expected:
        vis = sk[:, 2] > 0
        d = [np.abs(f[vis, :2] - sk[vis, :2]).max() if np.isfinite(f[vis, :2]).all() else np.inf for f in found]
        best = found[int(np.argmin(d))]
        assert min(d) <= tol_px, f"{where}: nearest person is {min(d):.2f} px off"
        assert np.array_equal(best[:, 2] > 0, vis), f"{where}: found parts {best[:, 2] > 0} != visible {vis}"
        assert np.isnan(best[~vis, :2]).all()
