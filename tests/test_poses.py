"""Poses: shape checks and the bounding boxes the poses table stores."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline.poses import Poses


def test_bboxes_span_the_found_keypoints():
    kps = np.full((3, 18, 3), np.nan, np.float32)
    kps[..., 2] = 0
    kps[0, [0, 4, 10]] = [(10, 20, 0.9), (4, 50, 0.5), (30, 90, 0.7)]
    kps[1, 7] = (12, 13, 0.4)  # a single keypoint: a box of size 0 at it
    poses = Poses(kps, np.array([0.9, 0.5, 0.1], np.float32))  # person 2 has no keypoint: zeros
    np.testing.assert_array_equal(poses.bboxes(), [[4, 20, 26, 70], [12, 13, 0, 0], [0, 0, 0, 0]])
    assert poses.bboxes().dtype == np.float32 and len(poses) == 3
    assert Poses.empty().bboxes().shape == (0, 4)


def test_wrong_shapes_are_clear_errors():
    with pytest.raises(ValueError, match=r"keypoints must be \[P, 18, 3\]"):
        Poses(np.zeros((2, 17, 3), np.float32), np.zeros(2, np.float32))
    with pytest.raises(ValueError, match=r"scores must be \[2\]"):
        Poses(np.zeros((2, 18, 3), np.float32), np.zeros(3, np.float32))
