"""render_fields: the paper's ground-truth confidence maps and PAFs of known skeletons."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline.parsing import render_fields
from pipeline.skeleton import BACKGROUND_CHANNEL, PAF_CHANNELS
from pipeline.testing import (person)


def test_render_follows_the_paper():
    sk = np.stack([person(100, 100, 150.0), person(300, 100, 150.0)])
    sk[1, 3, 2] = 0  # second person's right elbow missing
    fields = render_fields(sk, (400, 200), sigma=7.0, paf_width=8.0)
    assert fields.heatmaps.shape == (19, 25, 50) and fields.pafs.shape == (38, 25, 50)
    hm = fields.heatmaps
    # Gaussian value at a known cell: nose of person 0 at (100, 40); cell (5, 12) centre (99.5, 43.5).
    nose = sk[0, 0, :2]
    assert hm[0, 5, 12] == pytest.approx(np.exp(-((99.5 - nose[0]) ** 2 + (43.5 - nose[1]) ** 2) / 98), abs=1e-6)
    np.testing.assert_allclose(hm[BACKGROUND_CHANNEL], np.clip(1 - hm[:18].max(0), 0, 1), atol=1e-6)
    assert hm[3].max() > 0.7 and hm[3][:, 25:].max() < 1e-3  # missing elbow: no peak on the right
    # PAF of the neck->nose limb: unit vector pointing up on the limb, zero far away.
    cx, cy = PAF_CHANNELS[12]
    i, j = 6, 12  # cell centre (99.5, 51.5): between nose (100, 40) and neck (100, 55)
    assert fields.pafs[cx, i, j] == pytest.approx(0.0, abs=1e-6)
    assert fields.pafs[cy, i, j] == pytest.approx(-1.0, abs=1e-6)
    assert not fields.pafs[cx, 20:].any() and not fields.pafs[cy, 20:].any()
    # Missing elbow: no upper-arm / forearm field for person 1.
    for k in (2, 3):
        assert not fields.pafs[list(PAF_CHANNELS[k])][:, :, 25:].any()


def test_render_averages_overlapping_limbs():
    a = person(100, 100, 150.0)
    b = person(100, 100, 150.0, angle=np.pi / 2)  # same place, rotated 90 degrees
    fields = render_fields(np.stack([a, b]), (200, 200))
    cx, cy = PAF_CHANNELS[6]  # neck -> right hip, runs through the centre for both
    vec = fields.pafs[[cx, cy]]
    norms = np.hypot(*vec)
    assert norms.max() == pytest.approx(1.0, abs=1e-6)
    both = (norms > 1e-6) & (norms < 0.99)
    assert both.any()  # where both limbs cover a cell the field is the average of two unit vectors
    ua = (a[8, :2] - a[1, :2]) / np.hypot(*(a[8, :2] - a[1, :2]))
    ub = (b[8, :2] - b[1, :2]) / np.hypot(*(b[8, :2] - b[1, :2]))
    np.testing.assert_allclose(vec[:, both].T, np.tile((ua + ub) / 2, (both.sum(), 1)), atol=1e-6)



def test_bad_skeletons_are_a_clear_error():
    with pytest.raises(ValueError, match="skeletons must be"):
        render_fields(np.zeros((2, 17, 3)), (100, 100))
