"""PoseFields: shape checks and the map-cell -> pixel mapping."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline.fields import PoseFields


def _fields(hm, pf, scale=(8.0, 8.0), offset=(3.5, 3.5)):
    return PoseFields(heatmaps=hm, pafs=pf, scale=scale, offset=offset, image_size=(656, 368))


def test_wrong_shapes_are_clear_errors():
    with pytest.raises(ValueError, match="heatmaps must be"):
        _fields(np.zeros((18, 46, 82), np.float32), np.zeros((38, 46, 82), np.float32))
    with pytest.raises(ValueError, match=r"pafs must be \[38, 46, 82\]"):
        _fields(np.zeros((19, 46, 82), np.float32), np.zeros((38, 46, 80), np.float32))


def test_cells_to_pixels_follows_scale_and_offset():
    f = _fields(np.zeros((19, 46, 82), np.float32), np.zeros((38, 46, 82), np.float32),
                scale=(7.5, 9.2), offset=(2.0, 6.1))
    # Cell (i, j) = (row 3, column 10) has its centre at x = 10 * 7.5 + 2, y = 3 * 9.2 + 6.1.
    np.testing.assert_allclose(f.cells_to_pixels([[10.0, 3.0], [0.0, 0.0]]), [[77.0, 33.7], [2.0, 6.1]])
    assert f.cells_to_pixels(np.zeros((2, 5, 2))).shape == (2, 5, 2)
