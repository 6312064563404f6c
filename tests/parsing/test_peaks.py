"""find_peaks: peaks at known positions, the tie rule and the cap; and parse() recovering known
skeletons through smoothed, float16 and border-cut maps (rendered from them, the paper's ground truth).

Tolerances: at map resolution with the Gaussian sub-pixel fit a lone peak is exact up to float32
rounding, so 0.25 px; upsampled (bicubic) peak finding is biased by the interpolation (up to about
1.1 px for sigma = 7 px at stride 8), so 1.5 px there.
"""
from __future__ import annotations

import numpy as np
import pytest

from pipeline.parsing import ParseConfig, parse, render_fields
from pipeline.parsing.config import MATCHING_MODES
from pipeline.parsing.peaks import find_peaks
from pipeline.testing import assert_parse_recovers, assert_recovered, crop_to_image, expected_people, person

TOL_MAP, TOL_UPSAMPLED = 0.25, 1.5


@pytest.mark.parametrize("matching", MATCHING_MODES)
def test_people_cut_by_the_image_border(matching):
    size = (400, 300)
    sk = np.stack([person(10, 150, 200.0), person(390, 150, 200.0, angle=0.4),
                   person(200, 5, 200.0), person(200, 297, 200.0, angle=-0.2),
                   person(0.2, 0.3, 150.0)])
    sk = crop_to_image(sk, size)
    assert (sk[..., 2] == 0).any() and (sk[..., 2] > 0).any()
    # Keypoints within a pixel of the border: the one-sided fit keeps them exact.
    assert_parse_recovers(sk, size, ParseConfig(matching=matching), TOL_MAP)


@pytest.mark.parametrize("config", [ParseConfig(smooth_sigma=1.0), ParseConfig(smooth_sigma=0.5, upsample=4)])
def test_smoothing_keeps_gaussian_peaks_in_place(config):
    # A Gaussian blurred by a Gaussian is still a Gaussian at the same place.
    sk = np.stack([person(200, 184, 280.0, angle=0.2), person(470, 190, 240.0, angle=-2.0)])
    assert_parse_recovers(sk, (656, 368), config, TOL_MAP if config.upsample == 1 else TOL_UPSAMPLED)


def test_float16_maps_from_a_half_precision_network():
    sk = np.stack([person(200, 184, 280.0), person(470, 190, 240.0, angle=2.5)])
    f32 = render_fields(sk, (656, 368))
    f16 = type(f32)(**{**f32.__dict__, "heatmaps": f32.heatmaps.astype(np.float16),
                       "pafs": f32.pafs.astype(np.float16)})
    # float16 keeps ~3 significant digits: the log-parabola fit moves by hundredths of a pixel.
    assert_recovered(parse(f16), expected_people(sk, 4), 0.1)



def test_find_peaks_at_known_positions_with_the_tie_rule_and_the_cap():
    # One Gaussian (sigma 1.5 cells) per part at a known sub-cell position: the Gaussian fit of
    # the 3 cells around the peak is exact for a Gaussian.
    h, w = 20, 30
    yy, xx = np.mgrid[0:h, 0:w]
    centres = [(3.0 + 1.4 * p + 0.3, 4.0 + 0.6 * p - 0.2) for p in range(18)]  # (x, y) in cells
    heatmaps = np.zeros((19, h, w), np.float32)
    for p, (x, y) in enumerate(centres):
        heatmaps[p] = np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 1.5 ** 2))
    part_start, cells, scores = find_peaks(heatmaps, ParseConfig())
    assert part_start.tolist() == list(range(19))
    np.testing.assert_allclose(cells, centres, atol=1e-3)
    np.testing.assert_allclose(scores, heatmaps[np.arange(18), np.round(cells[:, 1]).astype(int),
                                                np.round(cells[:, 0]).astype(int)])
    # A plateau of two equal cells is one peak (the later cell of a tie wins nothing).
    flat = np.zeros((19, h, w), np.float32)
    flat[0, 5, 6:8] = 0.9
    part_start, cells, _ = find_peaks(flat, ParseConfig(subpixel="none"))
    assert part_start[1] == 1 and cells[0].tolist() == [6.0, 5.0]
    # More peaks than max_peaks: the strongest are kept, still in raster order.
    many = np.zeros((19, h, w), np.float32)
    many[2, 2, 2:28:3] = np.linspace(0.2, 0.9, 9)
    part_start, cells, scores = find_peaks(many, ParseConfig(max_peaks=4, subpixel="none"))
    assert np.diff(part_start).tolist()[2] == 4
    assert cells[:, 0].tolist() == [17.0, 20.0, 23.0, 26.0]
    np.testing.assert_allclose(scores, np.linspace(0.2, 0.9, 9)[5:], rtol=1e-6)
