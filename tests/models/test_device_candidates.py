"""pipeline.models.device_candidates on CPU torch: the device path must equal the numpy parser.

References: ``pipeline.parsing.find_candidates`` on each image's own cropped maps (the numpy
path), maps rendered from known skeletons (``pipeline.parsing.render_fields``, so the people are
also checked against the skeletons), the real default network's maps of real photos, and
``pipeline.models.preprocessing.preprocess`` for the uint8 hand-off.

Batches are padded to a common canvas whose padding holds values that would be peaks and strong
PAFs (0.9 / 0.7), so a cell beyond an image's valid cells leaking into its candidates shows up.
Tolerances: peak positions within 0.01 map cells, limb scores within 1e-4 (the brief's bounds;
on CPU torch the default settings agree to float32 rounding).
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from pipeline.fields import PoseFields
from pipeline.models import Preprocessing, get, load_model
from pipeline.models.device_candidates import MapGeometry, find_candidates_torch, network_input
from pipeline.models.preprocessing import preprocess
from pipeline.parsing import LimbCandidates, ParseConfig, assemble, find_candidates, render_fields
from pipeline.testing import (assert_recovered, crop_to_image, expected_people, grid_people, person,
                              random_draws)

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # fixture in tests/models/conftest.py

CELL_TOL, SCORE_TOL = 0.01, 1e-4
PAD_HEAT, PAD_PAF = 0.9, 0.7


def padded_batch(fields: list[PoseFields]) -> tuple[torch.Tensor, torch.Tensor, list[MapGeometry]]:
    """Stack PoseFields of different sizes top-left into one padded batch of maps."""
    h = max(f.heatmaps.shape[1] for f in fields)
    w = max(f.heatmaps.shape[2] for f in fields)
    heat = torch.full((len(fields), 19, h, w), PAD_HEAT)
    paf = torch.full((len(fields), 38, h, w), PAD_PAF)
    geometry = []
    for k, f in enumerate(fields):
        fh, fw = f.heatmaps.shape[1:]
        heat[k, :, :fh, :fw] = torch.from_numpy(f.heatmaps.astype(np.float32))
        paf[k, :, :fh, :fw] = torch.from_numpy(f.pafs.astype(np.float32))
        geometry.append(MapGeometry((fw, fh), f.scale, f.offset, f.image_size))
    return heat, paf, geometry


def assert_same_candidates(dev: LimbCandidates, ref: LimbCandidates, where: str) -> None:
    """The same peaks (positions within CELL_TOL cells) and the same kept limbs (scores within SCORE_TOL)."""
    np.testing.assert_array_equal(dev.part_start, ref.part_start, err_msg=f"{where}: peaks per part")
    np.testing.assert_allclose(dev.peak_cell, ref.peak_cell, rtol=0, atol=CELL_TOL, err_msg=f"{where}: peak cells")
    np.testing.assert_allclose(dev.peak_score, ref.peak_score, rtol=0, atol=1e-5, err_msg=f"{where}: peak scores")
    np.testing.assert_array_equal(dev.limb_start, ref.limb_start, err_msg=f"{where}: limbs per type")
    np.testing.assert_array_equal(dev.conn_a, ref.conn_a, err_msg=f"{where}: limb part-a peaks")
    np.testing.assert_array_equal(dev.conn_b, ref.conn_b, err_msg=f"{where}: limb part-b peaks")
    np.testing.assert_allclose(dev.conn_score, ref.conn_score, rtol=0, atol=SCORE_TOL, err_msg=f"{where}: limb scores")
    assert dev.image_size == ref.image_size
    for name in ("peak_xy", "peak_cell", "peak_score", "conn_score"):
        assert getattr(dev, name).dtype == np.float32, name
    for name in ("part_start", "conn_a", "conn_b", "limb_start"):
        assert getattr(dev, name).dtype == np.int32, name


def assert_same_people(dev: LimbCandidates, ref: LimbCandidates, config: ParseConfig, cell_px: float,
                       where: str) -> int:
    """pipeline.parsing.assemble finds the same people in both, keypoints within CELL_TOL cells."""
    a, b = assemble(dev, config), assemble(ref, config)
    assert len(a) == len(b), f"{where}: {len(a)} people from the device candidates, {len(b)} from numpy"
    np.testing.assert_array_equal(np.isnan(a.keypoints), np.isnan(b.keypoints), err_msg=where)
    np.testing.assert_allclose(a.keypoints[..., :2], b.keypoints[..., :2], rtol=0, atol=CELL_TOL * cell_px,
                               err_msg=f"{where}: keypoints")
    np.testing.assert_allclose(a.scores, b.scores, rtol=0, atol=SCORE_TOL, err_msg=f"{where}: person scores")
    return len(a)


def compare_batch(fields: list[PoseFields], config: ParseConfig, where: str) -> list[LimbCandidates]:
    """Device candidates of the padded batch vs the numpy parser on each image; returns the former."""
    heat, paf, geometry = padded_batch(fields)
    dev = find_candidates_torch(heat, paf, geometry, config)
    assert len(dev) == len(fields)
    for k, (d, f) in enumerate(zip(dev, fields)):
        ref = find_candidates(f, config)
        assert_same_candidates(d, ref, f"{where} image {k}")
        assert_same_people(d, ref, config, max(map(abs, f.scale)), f"{where} image {k}")
    return dev


# ---- rendered scenes (known skeletons) ----------------------------------------------------------------

def _scenes() -> list[tuple[np.ndarray, tuple[int, int], dict]]:
    """(skeletons, image size, render_fields keywords) of the parser tests' hard cases."""
    a, b = person(180, 190, 260.0), person(340, 190, 260.0)
    a[6, :2], a[7, :2] = (230, 150), (290, 210)  # left forearms crossing at right angles
    b[6, :2], b[7, :2] = (290, 150), (230, 210)
    border = crop_to_image(np.stack([person(10, 150, 200.0), person(390, 150, 200.0, angle=0.4),
                                     person(200, 5, 200.0), person(200, 297, 200.0, angle=-0.2),
                                     person(0.2, 0.3, 150.0)]), (400, 300))
    tiny_huge = crop_to_image(np.stack([person(40 + 45 * k, 40, 30.0, angle=0.3 * k) for k in range(5)]
                                       + [person(450, 200, 420.0)]), (656, 368))
    missing = np.stack([person(100, 184, 260.0, visible=[k != 1 for k in range(18)]),
                        person(260, 184, 260.0, visible=[k in (2, 3, 4, 16) for k in range(18)]),
                        person(400, 184, 260.0, visible=[k in (11, 12, 13) for k in range(18)])])
    rng = np.random.default_rng(0)
    fifty = grid_people((1312, 736), random_draws(50, rng), min_height=36.0, margin=28.0)
    return [
        (np.stack([a, b]), (520, 368), {}),
        (np.stack([person(200, 184, 300.0), person(221, 184, 300.0)]), (420, 368), {}),  # touching
        (border, (400, 300), {}),
        (tiny_huge, (656, 368), {}),
        (missing, (656, 368), {}),
        (np.stack([person(150, 200, 300.0, angle=0.3), person(430, 210, 260.0, angle=-0.5)]), (600, 400),
         {"scale": (7.5, 9.2), "offset": (2.0, 6.1)}),  # anisotropic cells
        (fifty, (1312, 736), {}),
    ]


@pytest.fixture(scope="module")
def scenes():
    return [(sk, render_fields(sk, size, **kw)) for sk, size, kw in _scenes()]


@pytest.mark.parametrize("matching", ["greedy", "hungarian"])
def test_rendered_scenes_in_one_padded_batch(scenes, matching):
    config = ParseConfig(matching=matching)
    dev = compare_batch([f for _, f in scenes], config, "scenes")
    for k, ((sk, _), cands) in enumerate(zip(scenes, dev)):
        # Independent of the numpy path: the rendered people themselves (parser tests' 0.25 px bound).
        assert_recovered(assemble(cands, config), expected_people(sk, 4), 0.25, where=f"scene {k}")


@pytest.mark.parametrize("config", [
    ParseConfig(smooth_sigma=0.7), ParseConfig(upsample=4), ParseConfig(upsample=3, subpixel="quadratic"),
    ParseConfig(upsample=8, smooth_sigma=0.4), ParseConfig(subpixel="none"), ParseConfig(subpixel="quadratic"),
    ParseConfig(max_peaks=3), ParseConfig(redundant_limbs=False, min_parts=2),
    ParseConfig(distance_prior=0.0, paf_samples=7, min_support=0.5, paf_threshold=0.2),
], ids=lambda c: ",".join(f"{k}={v}" for k, v in c.to_dict().items() if v != getattr(ParseConfig(), k)))
def test_every_parser_setting_matches_numpy(scenes, config):
    compare_batch([f for _, f in scenes], config, str(config))


def test_random_people_of_four_image_sizes():
    rng = np.random.default_rng(7)
    fields = []
    for k in range(12):
        size = ((656, 368), (368, 368), (432, 368), (200, 152))[k % 4]
        sk = grid_people(size, random_draws(int(rng.integers(1, 10)), rng), min_height=30.0)
        for p in range(len(sk)):
            sk[p, rng.choice(18, int(rng.integers(0, 7)), replace=False), 2] = 0.0
        fields.append(render_fields(crop_to_image(sk, size), size))
    compare_batch(fields, ParseConfig(), "random people")


def test_messy_maps_with_plateaus_noise_and_many_peaks():
    """Noise-like maps (ties on plateaus, peaks on every border, more than max_peaks per part)."""
    rng = np.random.default_rng(3)
    fields = []
    for h, w in ((23, 41), (46, 82), (3, 5), (1, 7), (2, 2)):
        heat = rng.uniform(0, 1, (19, h, w)).astype(np.float32)
        heat[:, ::3, ::4] = np.round(heat[:, ::3, ::4], 1)  # exact ties
        heat[:5, : h // 2, : w // 2] = 0.5  # flat plateaus
        pafs = rng.uniform(-1, 1, (38, h, w)).astype(np.float32)
        fields.append(PoseFields(heat, pafs, scale=(8.0, 8.0), offset=(3.5, 3.5), image_size=(8 * w, 8 * h)))
    dev = compare_batch(fields, ParseConfig(max_peaks=20), "messy maps")
    assert (np.diff(dev[1].part_start) == 20).any()  # the max_peaks cut was exercised
    compare_batch(fields, ParseConfig(upsample=2, smooth_sigma=0.5), "messy maps upsampled")


def test_half_precision_maps_and_empty_maps():
    sk = np.stack([person(200, 184, 280.0), person(470, 190, 240.0, angle=2.5)])
    f32 = render_fields(sk, (656, 368))
    f16 = PoseFields(f32.heatmaps.astype(np.float16), f32.pafs.astype(np.float16), f32.scale, f32.offset,
                     f32.image_size)
    heat, paf, geometry = padded_batch([f32])
    dev = find_candidates_torch(heat.half(), paf.half(), geometry)[0]
    ref = find_candidates(f16)
    assert_same_candidates(dev, ref, "fp16 maps")
    assert len(assemble(dev, ParseConfig())) == 2
    empty = find_candidates_torch(torch.zeros(2, 19, 9, 11), torch.zeros(2, 38, 9, 11),
                                  [MapGeometry((11, 9), (8.0, 8.0), (3.5, 3.5), (88, 72))] * 2)
    assert [len(c.peak_score) + len(c.conn_score) for c in empty] == [0, 0]
    assert len(assemble(empty[0], ParseConfig())) == 0


# ---- real network maps of real photos ------------------------------------------------------------------

@pytest.fixture(scope="module")
def real_batch(media_dir, model_dir):
    """The default network on 2 real photos in one padded uint8 batch, through network_input.

    Returns (preprocessed [Prepared] from pipeline.models.preprocessing.preprocess, the network_input
    tensor, heatmaps, pafs) with maps of the whole padded batch."""
    name = "omz-lightweight"
    prep = get(name).preprocessing
    images = [cv2.imread(str(media_dir / "images" / n)) for n in ("COCO_val2014_000000000357.jpg", "p3.jpg")]
    prepared = preprocess(images, prep)
    hp = max(p.input.shape[1] for p in prepared)
    wp = max(p.input.shape[2] for p in prepared)
    canvas = np.zeros((len(images), hp, wp, 3), np.uint8)  # unpadded: network_input pads
    for k, (img, p) in enumerate(zip(images, prepared)):
        w, h = p.placement.resized_size
        interp = cv2.INTER_AREA if w < img.shape[1] else cv2.INTER_LINEAR
        canvas[k, :h, :w] = cv2.resize(img, (w, h), interpolation=interp)
    x = network_input(torch.from_numpy(canvas), prep, [p.placement.resized_size for p in prepared])
    model = load_model(name, model_dir=model_dir)
    with torch.inference_mode():
        heat, paf = model(x.contiguous())
    return prepared, x, heat, paf


def test_uint8_hand_off_equals_numpy_preprocessing_on_real_photos(real_batch):
    prepared, x, _, _ = real_batch
    pad = get("omz-lightweight").preprocessing.pad_value
    for k, p in enumerate(prepared):
        _, h, w = p.input.shape
        np.testing.assert_array_equal(x[k, :, :h, :w].numpy(), p.input)
        assert (x[k, :, h:, :] == pad).all() and (x[k, :, :, w:] == pad).all()


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_real_network_maps_of_two_photos(real_batch, memory_format):
    # A channels_last network (the CUDA default) returns channels_last maps.
    prepared, _, heat, paf = real_batch
    config = ParseConfig()
    geometry = [MapGeometry.of_placement(p.placement) for p in prepared]
    dev = find_candidates_torch(heat.contiguous(memory_format=memory_format),
                                paf.contiguous(memory_format=memory_format), geometry, config)
    people = []
    for k, (d, g) in enumerate(zip(dev, geometry)):
        cw, ch = g.valid_cells
        fields = PoseFields(np.ascontiguousarray(heat[k, :, :ch, :cw].numpy()),
                            np.ascontiguousarray(paf[k, :, :ch, :cw].numpy()), g.scale, g.offset, g.image_size)
        ref = find_candidates(fields, config)
        assert_same_candidates(d, ref, f"photo {k}")
        people.append(assert_same_people(d, ref, config, max(map(abs, g.scale)), f"photo {k}"))
    assert min(people) >= 2, people  # both photos show several people


# ---- network_input against the numpy preprocessing -------------------------------------------------------

@pytest.mark.parametrize("prep", [
    Preprocessing(color="RGB", mean=(123.675, 116.28, 103.53), scale=1 / 58.395, pad_value=114.0),
    Preprocessing(color="BGR", mean=(128.0, 128.0, 128.0), scale=1.0 / 256.0, pad_value=128.0),  # cmu
    Preprocessing(color="BGR", input_size=(432, 368), pad_value=0.0),  # pinto: letterboxed, fixed size
], ids=["rgb-imagenet", "cmu", "fixed-size"])
def test_network_input_equals_preprocess(prep, media_dir):
    img = cv2.imread(str(media_dir / "images" / "p1.jpg"))
    h = prep.input_size[1] if prep.input_size else prep.target_height
    w = img.shape[1] * h // img.shape[0]
    img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)  # preprocess then resizes nothing
    ref = preprocess([img], prep)[0]
    wp, hp = ref.placement.input_size
    assert ref.placement.resized_size == (w, h)
    padded = np.full((hp, wp, 3), int(prep.pad_value), np.uint8)
    padded[:h, :w] = img
    blank = np.zeros((hp, wp, 3), np.uint8)
    blank[:h, :w] = img
    pre_padded = network_input(torch.from_numpy(padded[None]), prep)
    device_padded = network_input(torch.from_numpy(blank[None]), prep, [(w, h)])
    for x in (pre_padded, device_padded):
        assert x.dtype == torch.float32 and x.shape == (1, 3, hp, wp)
        np.testing.assert_allclose(x[0].numpy(), ref.input, rtol=1e-6, atol=1e-6)
        assert x.is_contiguous(memory_format=torch.channels_last)


# ---- bad input ----------------------------------------------------------------------------------------

def test_bad_input_is_named():
    geom = [MapGeometry((11, 9), (8.0, 8.0), (3.5, 3.5), (88, 72))]
    heat, paf = torch.zeros(1, 19, 9, 11), torch.zeros(1, 38, 9, 11)
    nan_heat = heat.clone()
    nan_heat[0, 3, 2, 2] = float("nan")
    with pytest.raises(ValueError, match="heatmaps of image 0 hold 1 NaN/inf"):
        find_candidates_torch(nan_heat, paf, geom)
    padded_nan = torch.full((1, 19, 10, 12), float("nan"))
    padded_nan[0, :, :9, :11] = 0.0
    assert find_candidates_torch(padded_nan, torch.zeros(1, 38, 10, 12), geom)[0].peak_score.size == 0
    with pytest.raises(ValueError, match=r"pafs must be a float torch tensor \[N, 38, h, w\]"):
        find_candidates_torch(heat, torch.zeros(1, 19, 9, 11), geom)
    with pytest.raises(ValueError, match="2 MapGeometry for 1 images"):
        find_candidates_torch(heat, paf, geom * 2)
    with pytest.raises(ValueError, match=r"valid_cells \(12, 9\)"):
        find_candidates_torch(heat, paf, [MapGeometry((12, 9), (8.0, 8.0), (3.5, 3.5), (96, 72))])
    with pytest.raises(ValueError, match="uint8 torch tensor"):
        network_input(torch.zeros(1, 8, 8, 3), Preprocessing())
    with pytest.raises(ValueError, match=r"one \(w, h\) per image \(1\) within the 8x8 canvas"):
        network_input(torch.zeros(1, 8, 8, 3, dtype=torch.uint8), Preprocessing(), [(9, 8)])
