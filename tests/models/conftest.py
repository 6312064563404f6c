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


@pytest.fixture(scope="session")
def matched_keypoint_distances():
    """(Poses, Poses) -> (distances in px of keypoints both found, count found by one only)."""
    return _matched_keypoint_distances
