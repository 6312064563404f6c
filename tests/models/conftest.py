"""Fixtures for the network tests."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment


@pytest.fixture(scope="module")
def one_torch_thread():
    """Run small CPU convolutions single-threaded for the module: on a shared 2-core machine OpenMP
    threads waiting on each other made them ~8x slower than one thread (measured)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _matched_keypoint_distances(a, b) -> tuple[np.ndarray, int]:
    """People of two parses paired by Hungarian on mean keypoint distance: distances (px) of the
    keypoints both found, and how many keypoints only one of them found."""
    ka, kb = a.keypoints[..., :2], b.keypoints[..., :2]
    cost = np.array([[np.nanmean(np.hypot(*(p - q).T)) if np.any(~np.isnan(p - q)) else 1e6 for q in kb]
                     for p in ka]).reshape(len(ka), len(kb))
    rows, cols = linear_sum_assignment(cost)
    both = ~np.isnan(ka[rows, :, 0]) & ~np.isnan(kb[cols, :, 0])
    either = ~np.isnan(ka[rows, :, 0]) | ~np.isnan(kb[cols, :, 0])
    d = np.hypot(*(ka[rows] - kb[cols])[both].T)
    return d, int((either & ~both).sum())


def _parse_agreement(fields_a, fields_b, names) -> tuple[np.ndarray, int, int]:
    """Parse two lists of PoseFields of the same images and compare them: the same number of people
    per image is asserted; returns (keypoint distances in px over all images, keypoints found by one
    side only, keypoints found by side a)."""
    from pipeline.parsing import ParseConfig, parse

    distances, one_sided, found = [], 0, 0
    for name, a, b in zip(names, fields_a, fields_b):
        assert a.scale == b.scale and a.offset == b.offset and a.heatmaps.shape == b.heatmaps.shape, name
        pa, pb = parse(a, ParseConfig()), parse(b, ParseConfig())
        assert len(pa) == len(pb), name
        d, n = _matched_keypoint_distances(pa, pb)
        distances.append(d)
        one_sided += n
        found += int((~np.isnan(pa.keypoints[..., 0])).sum())
    return np.concatenate(distances), one_sided, found


@pytest.fixture(scope="session")
def parse_agreement():
    """(fields_a, fields_b, names) -> (distances px, one-sided keypoints, keypoints found); see _parse_agreement."""
    return _parse_agreement


@pytest.fixture(scope="module")
def photo(media_dir):
    """p3_dance.png (several dancers) at 320 x 568 pixels (width a multiple of 8)."""
    import cv2

    img = cv2.imread(str(media_dir / "images" / "p3_dance.png"))
    return cv2.resize(img, (568, 320), interpolation=cv2.INTER_AREA)
