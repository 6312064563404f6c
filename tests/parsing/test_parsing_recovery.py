"""parse() recovers known skeletons from maps rendered from them (the paper's ground truth).

Tolerances: at map resolution with the Gaussian sub-pixel fit a lone peak is exact up to float32
rounding, so isolated people must come back within 0.25 px; upsampled (bicubic) peak finding is
biased by the interpolation (up to about 1.1 px for sigma = 7 px at stride 8) and, on the
map's outer cells, by its linear extension, so 1.5 px there;
people whose same parts are only 21 px apart within 1.0 px.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.testing import TEMPLATE, assert_recovered, crop_to_image, expected_people, grid_people, person
from pipeline.parsing import ParseConfig, parse, render_fields

MATCHERS = ("greedy", "hungarian")
TOL_MAP, TOL_UPSAMPLED, TOL_CROWDED = 0.25, 1.5, 1.0
SIZES = ((656, 368), (368, 368), (432, 368), (200, 152))


def check(skeletons, image_size, config: ParseConfig, tol: float, min_parts: int = 4) -> float:
    fields = render_fields(skeletons, image_size)
    return assert_recovered(parse(fields, config), expected_people(skeletons, min_parts), tol)


def _people_draws():
    one = st.tuples(st.floats(0, 1), st.floats(-math.pi, math.pi), st.floats(-1, 1), st.floats(-1, 1))
    return st.lists(one, min_size=1, max_size=9)


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(draws=_people_draws(), size=st.sampled_from(SIZES),
       dropped=st.lists(st.sets(st.integers(0, 17), max_size=6), min_size=9, max_size=9),
       matching=st.sampled_from(MATCHERS))
def test_random_people_recovered_at_map_resolution(draws, size, dropped, matching):
    sk = grid_people(size, draws, min_height=30.0)
    for p in range(len(sk)):
        sk[p, sorted(dropped[p]), 2] = 0.0  # missing parts
    sk = crop_to_image(sk, size)
    check(sk, size, ParseConfig(matching=matching), TOL_MAP)


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(draws=_people_draws(), size=st.sampled_from(SIZES), matching=st.sampled_from(MATCHERS),
       upsample=st.sampled_from([2, 4, 8]), subpixel=st.sampled_from(["gaussian", "quadratic"]))
def test_random_people_recovered_upsampled(draws, size, matching, upsample, subpixel):
    sk = crop_to_image(grid_people(size, draws, min_height=30.0), size)
    check(sk, size, ParseConfig(matching=matching, upsample=upsample, subpixel=subpixel), TOL_UPSAMPLED)


@pytest.mark.parametrize("matching", MATCHERS)
def test_one_person(matching):
    sk = person(328.3, 180.6, 300.0)[None]
    fields = render_fields(sk, (656, 368))
    poses = parse(fields, ParseConfig(matching=matching))
    assert_recovered(poses, [sk[0]], TOL_MAP)
    # Peak score = map value at the peak cell, >= exp(-(4 sqrt 2)^2 / (2 * 7^2)) = 0.72.
    assert np.all(poses.keypoints[0, :, 2] > 0.72)
    assert 0.8 < poses.scores[0] <= 1.0


@pytest.mark.parametrize("matching", MATCHERS)
def test_fifty_people_sorted_by_score(matching):
    rng = np.random.default_rng(0)
    draws = np.stack([rng.uniform(0, 1, 50), rng.uniform(-3, 3, 50), rng.uniform(-1, 1, 50),
                      rng.uniform(-1, 1, 50)], axis=1)
    sk = grid_people((1312, 736), draws, min_height=36.0, margin=28.0)
    poses = parse(render_fields(sk, (1312, 736)), ParseConfig(matching=matching))
    assert_recovered(poses, expected_people(sk, 4), TOL_MAP)
    assert np.all(np.diff(poses.scores) <= 0)


@pytest.mark.parametrize("matching", MATCHERS)
def test_crossing_forearms_of_the_same_limb_type(matching):
    # Two people whose left forearms (same PAF channels) cross at right angles at (260, 180).
    a = person(180, 190, 260.0)
    b = person(340, 190, 260.0)
    a[6, :2], a[7, :2] = (230, 150), (290, 210)
    b[6, :2], b[7, :2] = (290, 150), (230, 210)
    sk = np.stack([a, b])
    check(sk, (520, 368), ParseConfig(matching=matching), TOL_MAP)


@pytest.mark.parametrize("matching", MATCHERS)
def test_crossing_legs_of_different_people(matching):
    # Right shin of one person crosses the right shin of the next one at a shallow angle.
    a = person(200, 184, 300.0)
    b = person(250, 184, 300.0)
    a[10, :2] = (255, 320)
    b[10, :2] = (180, 320)
    check(np.stack([a, b]), (480, 368), ParseConfig(matching=matching), TOL_CROWDED)


@pytest.mark.parametrize("matching", MATCHERS)
def test_touching_people_side_by_side(matching):
    # Same parts 21 px (3 sigma) apart: limbs of the same type overlap and touch.
    sk = np.stack([person(200, 184, 300.0), person(221, 184, 300.0)])
    check(sk, (420, 368), ParseConfig(matching=matching), TOL_CROWDED)


@pytest.mark.parametrize("matching", MATCHERS)
def test_hands_touching_between_people(matching):
    a, b = person(150, 184, 300.0), person(290, 184, 300.0)
    a[7, :2] = (218, 150)  # left wrist of a ...
    b[4, :2] = (222, 150)  # ... touches the right wrist of b
    check(np.stack([a, b]), (440, 368), ParseConfig(matching=matching), TOL_MAP)


@pytest.mark.parametrize("matching", MATCHERS)
def test_people_cut_by_the_image_border(matching):
    size = (400, 300)
    sk = np.stack([person(10, 150, 200.0), person(390, 150, 200.0, angle=0.4),
                   person(200, 5, 200.0), person(200, 297, 200.0, angle=-0.2),
                   person(0.2, 0.3, 150.0)])
    sk = crop_to_image(sk, size)
    assert (sk[..., 2] == 0).any() and (sk[..., 2] > 0).any()
    # Keypoints within a pixel of the border: the one-sided fit keeps them exact.
    check(sk, size, ParseConfig(matching=matching), TOL_MAP)


@pytest.mark.parametrize("matching", MATCHERS)
def test_tiny_and_huge_people(matching):
    size = (656, 368)
    tiny = [person(40 + 45 * k, 40, 30.0, angle=0.3 * k) for k in range(5)]
    huge = person(450, 200, 420.0)  # taller than the image: feet and head cut off
    sk = crop_to_image(np.stack(tiny + [huge]), size)
    check(sk, size, ParseConfig(matching=matching), TOL_MAP)


@pytest.mark.parametrize("matching", MATCHERS)
def test_missing_parts(matching):
    size = (656, 368)
    # No neck: head, both arms (via the ear-shoulder limbs) stay one person; each leg (3 parts,
    # cut off from the rest) falls below min_parts and must not appear.
    no_neck = person(100, 184, 260.0, visible=[k != 1 for k in range(18)])
    # Only the right arm and the right ear: joined by the ear-shoulder limb alone.
    arm_ear = person(260, 184, 260.0, visible=[k in (2, 3, 4, 16) for k in range(18)])
    leg = person(400, 184, 260.0, visible=[k in (11, 12, 13) for k in range(18)])
    lower_body = person(540, 184, 260.0, visible=[k in (1, 8, 9, 10, 11, 12, 13) for k in range(18)])
    sk = np.stack([no_neck, arm_ear, leg, lower_body])
    expected = expected_people(sk, 4)
    assert [np.flatnonzero(e[:, 2]).tolist() for e in expected] == [
        [0, 2, 3, 4, 5, 6, 7, 14, 15, 16, 17], [2, 3, 4, 16], [1, 8, 9, 10, 11, 12, 13]]
    fields = render_fields(sk, size)
    assert_recovered(parse(fields, ParseConfig(matching=matching)), expected, TOL_MAP)


def test_without_redundant_limbs_the_ear_shoulder_link_is_lost():
    arm_face = person(260, 184, 260.0, visible=[k in (2, 3, 4, 16, 14) for k in range(18)])
    fields = render_fields(arm_face[None], (656, 368))
    assert len(parse(fields)) == 1
    # Without the ear-shoulder limbs the arm (3 parts) and the eye-ear pair fall apart.
    assert len(parse(fields, ParseConfig(redundant_limbs=False, min_parts=2))) == 2


def test_max_people_keeps_the_best():
    sk = grid_people((656, 368), [(1.0, 0, 0, 0), (0.0, 0, 0, 0), (0.5, 0, 0, 0)])
    sk[1, [0, 14, 15, 16, 17, 2, 3, 4], 2] = 0  # a partial person scores lowest
    fields = render_fields(sk, (656, 368))
    everyone = parse(fields)
    assert len(everyone) == 3
    best_two = parse(fields, ParseConfig(max_people=2))
    np.testing.assert_array_equal(best_two.keypoints, everyone.keypoints[:2])
    assert np.isnan(everyone.keypoints[2, 0, 0])  # the partial one is last


def test_template_is_a_plausible_person():
    # Guards the test data itself: distinct parts, head above hips above ankles.
    assert len(np.unique(TEMPLATE.round(6), axis=0)) == 18
    assert TEMPLATE[0, 1] < TEMPLATE[8, 1] < TEMPLATE[10, 1]


@pytest.mark.parametrize("matching", MATCHERS)
def test_anisotropic_scale_and_offset(matching):
    # A letterboxed / non-square resize: cells are 7.5 x 9.2 pixels and cell (0, 0) is off-origin.
    size = (600, 400)
    sk = np.stack([person(150, 200, 300.0, angle=0.3), person(430, 210, 260.0, angle=-0.5)])
    fields = render_fields(sk, size, scale=(7.5, 9.2), offset=(2.0, 6.1))
    poses = parse(fields, ParseConfig(matching=matching))
    assert_recovered(poses, expected_people(sk, 4), TOL_MAP)


@pytest.mark.parametrize("config", [ParseConfig(smooth_sigma=1.0), ParseConfig(smooth_sigma=0.5, upsample=4)])
def test_smoothing_keeps_gaussian_peaks_in_place(config):
    # A Gaussian blurred by a Gaussian is still a Gaussian at the same place.
    sk = np.stack([person(200, 184, 280.0, angle=0.2), person(470, 190, 240.0, angle=-2.0)])
    check(sk, (656, 368), config, TOL_MAP if config.upsample == 1 else TOL_UPSAMPLED)


def test_float16_maps_from_a_half_precision_network():
    sk = np.stack([person(200, 184, 280.0), person(470, 190, 240.0, angle=2.5)])
    f32 = render_fields(sk, (656, 368))
    f16 = type(f32)(**{**f32.__dict__, "heatmaps": f32.heatmaps.astype(np.float16),
                       "pafs": f32.pafs.astype(np.float16)})
    # float16 keeps ~3 significant digits: the log-parabola fit moves by hundredths of a pixel.
    assert_recovered(parse(f16), expected_people(sk, 4), 0.1)
