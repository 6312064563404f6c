"""assemble / parse: people from candidate limbs, checked against known skeletons (maps rendered
from them, the paper's ground truth) and against the loop reference parser on messy maps.

Tolerances: at map resolution with the Gaussian sub-pixel fit a lone peak is exact up to float32
rounding, so isolated people must come back within 0.25 px; upsampled (bicubic) peak finding is
biased by the interpolation (up to about 1.1 px for sigma = 7 px at stride 8) and, on the map's
outer cells, by its linear extension, so 1.5 px there; people whose same parts are only 21 px
apart within 1.0 px.
"""
from __future__ import annotations

import math
import pickle
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.fields import PoseFields
from pipeline.parsing import ParseConfig, assemble, find_candidates, parse, render_fields
from pipeline.parsing.config import MATCHING_MODES
from pipeline.skeleton import BACKGROUND_CHANNEL
from pipeline.testing import (assert_parse_recovers, assert_recovered, crop_to_image, expected_people,
                              grid_people, person)
from pipeline.testing_reference import reference_parse


def _fields(hm, pf, size=(656, 368)):
    return PoseFields(heatmaps=hm, pafs=pf, scale=(8.0, 8.0), offset=(3.5, 3.5), image_size=size)


SIZES = ((656, 368), (368, 368), (432, 368), (200, 152))


def _people_draws():
    one = st.tuples(st.floats(0, 1), st.floats(-math.pi, math.pi), st.floats(-1, 1), st.floats(-1, 1))
    return st.lists(one, min_size=1, max_size=9)


TOL_MAP, TOL_UPSAMPLED, TOL_CROWDED = 0.25, 1.5, 1.0


@pytest.mark.parametrize("config", [ParseConfig(), ParseConfig(matching="hungarian", upsample=4)])
def test_empty_maps_give_no_people(config):
    empty = render_fields(np.zeros((0, 18, 3)), (656, 368))
    assert np.all(empty.heatmaps[BACKGROUND_CHANNEL] == 1) and not empty.pafs.any()
    poses = parse(empty, config)
    assert len(poses) == 0 and poses.keypoints.shape == (0, 18, 3)
    zeros = _fields(np.zeros((19, 46, 82), np.float32), np.zeros((38, 46, 82), np.float32))
    assert len(parse(zeros, config)) == 0


@pytest.mark.parametrize("config", [ParseConfig(), ParseConfig(matching="hungarian", upsample=2)])
def test_find_candidates_then_assemble_equals_parse(config):
    rng = np.random.default_rng(3)
    draws = np.stack([rng.uniform(0, 1, 12), rng.uniform(-3, 3, 12), rng.uniform(-1, 1, 12),
                      rng.uniform(-1, 1, 12)], axis=1)
    fields = render_fields(grid_people((656, 368), draws), (656, 368))
    cands = find_candidates(fields, config)
    cands = pickle.loads(pickle.dumps(cands))  # it travels between processes
    direct, split = parse(fields, config), assemble(cands, config)
    assert len(direct) == 12
    np.testing.assert_array_equal(direct.keypoints, split.keypoints)
    np.testing.assert_array_equal(direct.scores, split.scores)


@pytest.mark.parametrize("config", [ParseConfig(), ParseConfig(matching="hungarian", max_peaks=40)])
def test_noise_maps_stay_bounded_and_well_formed(config):
    rng = np.random.default_rng(7)
    fields = _fields(rng.random((19, 46, 82), dtype=np.float32),
                     (2 * rng.random((38, 46, 82), dtype=np.float32) - 1))
    cands = find_candidates(fields, config)
    assert np.diff(cands.part_start).max() == config.max_peaks  # noise has more peaks than that
    poses = parse(fields, config)
    assert len(poses) <= config.max_people
    found = np.isfinite(poses.keypoints[..., 0])
    assert np.all(found.sum(axis=1) >= config.min_parts)
    assert np.all(poses.keypoints[..., 2][~found] == 0) and np.all(np.diff(poses.scores) <= 0)


@pytest.mark.parametrize("config", [ParseConfig(), ParseConfig(matching="hungarian"),
                                    ParseConfig(upsample=4, min_parts=2, min_mean_score=0.0)])
def test_agrees_with_the_loop_reference_on_messy_maps(config):
    # Random blobs and random PAFs: many peaks, crossing candidates, merges refused for shared
    # parts... The vectorised parser must make exactly the loop reference's choices.
    rng = np.random.default_rng(11)
    for _ in range(4):
        fields = _fields((rng.random((19, 12, 16)) ** 6).astype(np.float32),
                         rng.normal(0, 0.5, (38, 12, 16)).astype(np.float32), size=(128, 96))
        ours, ref = parse(fields, config), reference_parse(fields, config)
        assert len(ours) == len(ref) > 3
        np.testing.assert_allclose(ours.keypoints, ref.keypoints, atol=1e-3)
        np.testing.assert_allclose(ours.scores, ref.scores, atol=1e-5)


def test_parsing_never_imports_torch():
    code = ("import sys, pipeline.parsing, pipeline.parsing.assembly; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)



@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(draws=_people_draws(), size=st.sampled_from(SIZES),
       dropped=st.lists(st.sets(st.integers(0, 17), max_size=6), min_size=9, max_size=9),
       matching=st.sampled_from(MATCHING_MODES))
def test_random_people_recovered_at_map_resolution(draws, size, dropped, matching):
    sk = grid_people(size, draws, min_height=30.0)
    for p in range(len(sk)):
        sk[p, sorted(dropped[p]), 2] = 0.0  # missing parts
    sk = crop_to_image(sk, size)
    assert_parse_recovers(sk, size, ParseConfig(matching=matching), TOL_MAP)


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(draws=_people_draws(), size=st.sampled_from(SIZES), matching=st.sampled_from(MATCHING_MODES),
       upsample=st.sampled_from([2, 4, 8]), subpixel=st.sampled_from(["gaussian", "quadratic"]))
def test_random_people_recovered_upsampled(draws, size, matching, upsample, subpixel):
    sk = crop_to_image(grid_people(size, draws, min_height=30.0), size)
    config = ParseConfig(matching=matching, upsample=upsample, subpixel=subpixel)
    assert_parse_recovers(sk, size, config, TOL_UPSAMPLED)



@pytest.mark.parametrize("matching", MATCHING_MODES)
def test_one_person(matching):
    sk = person(328.3, 180.6, 300.0)[None]
    fields = render_fields(sk, (656, 368))
    poses = parse(fields, ParseConfig(matching=matching))
    assert_recovered(poses, [sk[0]], TOL_MAP)
    # Peak score = map value at the peak cell, >= exp(-(4 sqrt 2)^2 / (2 * 7^2)) = 0.72.
    assert np.all(poses.keypoints[0, :, 2] > 0.72)
    assert 0.8 < poses.scores[0] <= 1.0


@pytest.mark.parametrize("matching", MATCHING_MODES)
def test_fifty_people_sorted_by_score(matching):
    rng = np.random.default_rng(0)
    draws = np.stack([rng.uniform(0, 1, 50), rng.uniform(-3, 3, 50), rng.uniform(-1, 1, 50),
                      rng.uniform(-1, 1, 50)], axis=1)
    sk = grid_people((1312, 736), draws, min_height=36.0, margin=28.0)
    poses = parse(render_fields(sk, (1312, 736)), ParseConfig(matching=matching))
    assert_recovered(poses, expected_people(sk, 4), TOL_MAP)
    assert np.all(np.diff(poses.scores) <= 0)


@pytest.mark.parametrize("matching", MATCHING_MODES)
def test_crossing_forearms_of_the_same_limb_type(matching):
    # Two people whose left forearms (same PAF channels) cross at right angles at (260, 180).
    a = person(180, 190, 260.0)
    b = person(340, 190, 260.0)
    a[6, :2], a[7, :2] = (230, 150), (290, 210)
    b[6, :2], b[7, :2] = (290, 150), (230, 210)
    sk = np.stack([a, b])
    assert_parse_recovers(sk, (520, 368), ParseConfig(matching=matching), TOL_MAP)


@pytest.mark.parametrize("matching", MATCHING_MODES)
def test_crossing_legs_of_different_people(matching):
    # Right shin of one person crosses the right shin of the next one at a shallow angle.
    a = person(200, 184, 300.0)
    b = person(250, 184, 300.0)
    a[10, :2] = (255, 320)
    b[10, :2] = (180, 320)
    assert_parse_recovers(np.stack([a, b]), (480, 368), ParseConfig(matching=matching), TOL_CROWDED)


@pytest.mark.parametrize("matching", MATCHING_MODES)
def test_touching_people_side_by_side(matching):
    # Same parts 21 px (3 sigma) apart: limbs of the same type overlap and touch.
    sk = np.stack([person(200, 184, 300.0), person(221, 184, 300.0)])
    assert_parse_recovers(sk, (420, 368), ParseConfig(matching=matching), TOL_CROWDED)


@pytest.mark.parametrize("matching", MATCHING_MODES)
def test_hands_touching_between_people(matching):
    a, b = person(150, 184, 300.0), person(290, 184, 300.0)
    a[7, :2] = (218, 150)  # left wrist of a ...
    b[4, :2] = (222, 150)  # ... touches the right wrist of b
    assert_parse_recovers(np.stack([a, b]), (440, 368), ParseConfig(matching=matching), TOL_MAP)


@pytest.mark.parametrize("matching", MATCHING_MODES)
def test_tiny_and_huge_people(matching):
    size = (656, 368)
    tiny = [person(40 + 45 * k, 40, 30.0, angle=0.3 * k) for k in range(5)]
    huge = person(450, 200, 420.0)  # taller than the image: feet and head cut off
    sk = crop_to_image(np.stack(tiny + [huge]), size)
    assert_parse_recovers(sk, size, ParseConfig(matching=matching), TOL_MAP)


@pytest.mark.parametrize("matching", MATCHING_MODES)
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


@pytest.mark.parametrize("matching", MATCHING_MODES)
def test_anisotropic_scale_and_offset(matching):
    # A letterboxed / non-square resize: cells are 7.5 x 9.2 pixels and cell (0, 0) is off-origin.
    size = (600, 400)
    sk = np.stack([person(150, 200, 300.0, angle=0.3), person(430, 210, 260.0, angle=-0.5)])
    fields = render_fields(sk, size, scale=(7.5, 9.2), offset=(2.0, 6.1))
    poses = parse(fields, ParseConfig(matching=matching))
    assert_recovered(poses, expected_people(sk, 4), TOL_MAP)

