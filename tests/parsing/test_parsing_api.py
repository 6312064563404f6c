"""ParseConfig, bad input, the find_candidates/assemble split, and the rendered ground truth."""
from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.testing import grid_people, person
from pipeline.fields import PoseFields
from pipeline.parsing import ParseConfig, assemble, find_candidates, parse, render_fields
from pipeline.skeleton import BACKGROUND_CHANNEL, LIMBS, PAF_CHANNELS
from pipeline.testing_reference import reference_parse


def test_config_defaults_are_openposes():
    cfg = ParseConfig()
    assert (cfg.peak_threshold, cfg.paf_threshold, cfg.paf_samples, cfg.min_support) == (0.1, 0.05, 10, 0.8)
    assert (cfg.distance_prior, cfg.min_parts, cfg.min_mean_score, cfg.matching) == (0.5, 4, 0.4, "greedy")


def test_config_round_trips_through_json():
    cfg = ParseConfig(matching="hungarian", upsample=4, smooth_sigma=1.5, max_people=7)
    assert ParseConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    # numpy numbers (from a parameter sweep) are accepted and stored as plain Python numbers
    swept = ParseConfig(peak_threshold=np.float32(0.25), upsample=np.int64(2))
    assert json.loads(json.dumps(swept.to_dict()))["upsample"] == 2 and swept.peak_threshold == 0.25


@pytest.mark.parametrize("bad, words", [
    ({"thre1": 0.1}, "unknown ParseConfig keys ['thre1']"),
    ({"matching": "auction"}, "matching"),
    ({"subpixel": "spline"}, "subpixel"),
    ({"upsample": 0}, "upsample"),
    ({"upsample": 2.5}, "integer"),
    ({"peak_threshold": float("nan")}, "finite"),
    ({"peak_threshold": -0.1}, "peak_threshold"),
    ({"min_support": 1.0}, "min_support"),
    ({"min_parts": 1}, "min_parts"),
    ({"max_people": 0}, "max_people"),
    ({"smooth_sigma": -1}, "smooth_sigma"),
    ({"redundant_limbs": "yes"}, "redundant_limbs"),
])
def test_config_rejects_bad_values(bad, words):
    with pytest.raises(ValueError, match=words.replace("[", r"\[").replace("]", r"\]")):
        ParseConfig.from_dict(bad)


def _fields(hm, pf, size=(656, 368)):
    return PoseFields(heatmaps=hm, pafs=pf, scale=(8.0, 8.0), offset=(3.5, 3.5), image_size=size)


@pytest.mark.parametrize("config", [ParseConfig(), ParseConfig(matching="hungarian", upsample=4)])
def test_empty_maps_give_no_people(config):
    empty = render_fields(np.zeros((0, 18, 3)), (656, 368))
    assert np.all(empty.heatmaps[BACKGROUND_CHANNEL] == 1) and not empty.pafs.any()
    poses = parse(empty, config)
    assert len(poses) == 0 and poses.keypoints.shape == (0, 18, 3)
    zeros = _fields(np.zeros((19, 46, 82), np.float32), np.zeros((38, 46, 82), np.float32))
    assert len(parse(zeros, config)) == 0


@pytest.mark.parametrize("name", ["heatmaps", "pafs"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_maps_are_a_clear_error(name, value):
    fields = render_fields(person(300, 180, 250.0)[None], (656, 368))
    arr = getattr(fields, name).copy()
    arr[3, 10, 20] = value
    broken = PoseFields(**{**fields.__dict__, name: arr})
    with pytest.raises(ValueError, match=rf"PoseFields\.{name} holds 1 NaN/inf"):
        parse(broken)


def test_wrong_inputs_are_clear_errors():
    with pytest.raises(ValueError, match="heatmaps must be"):
        _fields(np.zeros((18, 46, 82), np.float32), np.zeros((38, 46, 82), np.float32))
    with pytest.raises(ValueError, match="needs a pipeline.fields.PoseFields"):
        parse(np.zeros((57, 46, 82), np.float32))
    with pytest.raises(ValueError, match="float array"):
        parse(_fields(np.zeros((19, 46, 82), np.int32), np.zeros((38, 46, 82), np.float32)))
    with pytest.raises(ValueError, match="skeletons must be"):
        render_fields(np.zeros((2, 17, 3)), (100, 100))


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


def test_limb_candidates_are_much_smaller_than_the_maps():
    rng = np.random.default_rng(4)
    draws = np.stack([rng.uniform(0, 1, 20), rng.uniform(-3, 3, 20), rng.uniform(-1, 1, 20),
                      rng.uniform(-1, 1, 20)], axis=1)
    fields = render_fields(grid_people((656, 368), draws, min_height=30.0), (656, 368))
    cands = find_candidates(fields)
    maps = fields.heatmaps.nbytes + fields.pafs.nbytes
    assert cands.part_start[-1] == 20 * 18
    assert cands.nbytes() * 20 < maps, (cands.nbytes(), maps)


def test_peaks_and_candidates_are_consistent():
    sk = person(300.4, 170.2, 250.0)[None]
    fields = render_fields(sk, (656, 368))
    cands = find_candidates(fields)
    np.testing.assert_allclose(cands.peak_xy, sk[0, :, :2], atol=1e-3)
    np.testing.assert_allclose(fields.cells_to_pixels(cands.peak_cell), cands.peak_xy, atol=1e-3)
    for k, (a, b) in enumerate(LIMBS):  # exactly the true limb, with the mean projection ~1
        ca, cb, score = cands.limb(k)
        assert ca.tolist() == [a] and cb.tolist() == [b]
        assert 0.9 < score[0] <= 1.0


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


def test_parsing_never_imports_torch():
    code = ("import sys, pipeline.parsing, pipeline.parsing.assembly; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_grid_people_do_not_overlap():
    # Guards the test data: different people's same parts are at least the margin apart.
    sk = grid_people((656, 368), np.tile([1.0, 0.3, 1.0, -1.0], (9, 1)), margin=32.0)
    d = np.linalg.norm(sk[:, None, :, :2] - sk[None, :, :, :2], axis=-1)
    off_diagonal = d[~np.eye(9, dtype=bool)]
    assert off_diagonal.min() >= 32.0


def test_hungarian_beats_greedy_where_greedy_is_myopic():
    from pipeline.parsing.matching import match_limb

    # Two necks (peaks 0, 1) and two shoulders (2, 3): greedy takes the single best pair first.
    conn_a, conn_b = np.array([0, 0, 1, 1]), np.array([2, 3, 2, 3])
    score = np.array([0.9, 0.8, 0.85, 0.1])
    greedy = match_limb(conn_a, conn_b, score, "greedy")
    hungarian = match_limb(conn_a, conn_b, score, "hungarian")
    assert sorted(greedy.tolist()) == [0, 3] and score[greedy].sum() == pytest.approx(1.0)
    assert sorted(hungarian.tolist()) == [1, 2] and score[hungarian].sum() == pytest.approx(1.65)
    assert np.all(np.diff(score[hungarian]) <= 0)  # handed to assembly by descending score
    # The best assignment pairs peak 1 with peak 3, which is no candidate: it must not appear.
    chosen = match_limb(np.array([0, 1, 0]), np.array([2, 2, 3]), np.array([0.5, 0.4, 0.05]), "hungarian")
    assert chosen.tolist() == [0]


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
