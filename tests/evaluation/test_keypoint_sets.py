"""CrowdPose-14 and PoseTrack-17 annotation files (built from the real COCO val2017 mini ground truth)
scored by evaluate() and compared with pycocotools' COCOeval run directly on the COCO file restricted
to the same joints."""
from __future__ import annotations

import contextlib
import copy
import io

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from pipeline import keypoints_array
from pipeline.evaluation import evaluate, export_coco, image_ids_from_annotations, import_coco
from pipeline.evaluation.keypoint_sets import CROWDPOSE14, POSETRACK17, keypoint_set_of
from pipeline.skeleton import COCO17_KEYPOINTS, KEYPOINTS

CROWDPOSE_NAMES = ["left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
                   "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "head", "neck"]
POSETRACK_NAMES = ["nose", "head_bottom", "head_top", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
                   "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
                   "right_knee", "left_ankle", "right_ankle"]


def direct_stats(gt_data: dict, results: list[dict]) -> np.ndarray:
    """COCOeval stats straight from pycocotools with its default (COCO) sigmas."""
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = copy.deepcopy(gt_data)
        gt.createIndex()
        ev = COCOeval(gt, gt.loadRes(copy.deepcopy(results)), iouType="keypoints")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats


def stats_of(res) -> np.ndarray:
    return np.asarray([-1.0 if v is None else v for v in res.stats.values()])


def coco_kept(ann: dict, keep: set[str]) -> dict:
    """The COCO file with every joint not in ``keep`` unlabelled (v = 0), num_keypoints recounted."""
    out = copy.deepcopy(ann)
    for a in out["annotations"]:
        kp = np.asarray(a["keypoints"], float).reshape(17, 3)
        kp[[i for i, n in enumerate(COCO17_KEYPOINTS) if n not in keep]] = 0
        a["keypoints"], a["num_keypoints"] = kp.reshape(-1).tolist(), int((kp[:, 2] > 0).sum())
    return out


def crowdpose_file(ann: dict, neck: bool) -> dict:
    """The COCO ground truth in the CrowdPose-14 layout: head unlabelled; neck unlabelled, or (neck=True)
    at the shoulders' midpoint where both are labelled."""
    out = copy.deepcopy(ann)
    out["categories"] = [{"id": 1, "name": "person", "keypoints": CROWDPOSE_NAMES}]
    for a in out["annotations"]:
        kp = np.asarray(a["keypoints"], float).reshape(17, 3)
        body = kp[5:]
        ls, rs = kp[5], kp[6]
        neck_kp = [(ls[0] + rs[0]) / 2, (ls[1] + rs[1]) / 2, 2] if neck and ls[2] > 0 and rs[2] > 0 else [0, 0, 0]
        new = np.concatenate([body, [[0, 0, 0]], [neck_kp]])
        a["keypoints"], a["num_keypoints"] = new.reshape(-1).tolist(), int((new[:, 2] > 0).sum())
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_crowdpose_ap_equals_coco_restricted_to_the_same_joints(ann, noisy_poses, seed):
    poses = noisy_poses(seed)
    got = evaluate(poses, crowdpose_file(ann, neck=False), per_image=False)
    want = direct_stats(coco_kept(ann, set(CROWDPOSE_NAMES)), export_coco(poses, image_ids_from_annotations(ann)))
    np.testing.assert_allclose(stats_of(got), want, atol=1e-12)
    assert 0.2 < got.ap < 1.0


def test_crowdpose_neck_is_scored_and_head_is_not(ann):
    perfect = import_coco(ann)  # the ground truth itself as predictions (neck at the shoulders' midpoint)
    with_neck = crowdpose_file(ann, neck=True)
    assert evaluate(perfect, with_neck, per_image=False).ap == pytest.approx(1.0)
    moved = perfect.copy()
    kp = keypoints_array(moved)
    kp[:, KEYPOINTS.index("neck"), 1] -= 60  # the neck 60 px off
    moved["keypoints"] = list(kp.reshape(len(kp), -1))
    assert evaluate(moved, with_neck, per_image=False).ap < 0.95  # one of 13 scored joints far off
    assert evaluate(moved, crowdpose_file(ann, neck=False), per_image=False).ap == pytest.approx(1.0)


def posetrack_file(ann: dict) -> tuple[dict, dict[int, str]]:
    """The COCO ground truth in the PoseTrack-17 layout: eyes replaced by labelled head_bottom/head_top
    (far from anything the network predicts), and images in two sequence folders whose frames share
    base names (seq_a/000000.jpg, seq_b/000000.jpg, ...). Returns the file and {image id: file_name}."""
    out = copy.deepcopy(ann)
    out["categories"] = [{"id": 1, "name": "person", "keypoints": POSETRACK_NAMES}]
    names = {}
    for i, img in enumerate(sorted(out["images"], key=lambda m: m["id"])):
        img["file_name"] = names[img["id"]] = f"images/val/seq_{'ab'[i % 2]}/{i // 2:06d}.jpg"
    for a in out["annotations"]:
        kp = np.asarray(a["keypoints"], float).reshape(17, 3)
        kp[1:3] = (5.0, 5.0, 2)
        a["keypoints"] = kp.reshape(-1).tolist()
    return out, names


@pytest.mark.parametrize("seed", [0, 3])
def test_posetrack_repeated_base_names_and_unscored_head_joints(ann, noisy_poses, seed):
    poses = noisy_poses(seed)
    pt, names = posetrack_file(ann)
    coco_ids = image_ids_from_annotations(ann)
    id_of_base = {uri: coco_ids[uri.rsplit("/", 1)[-1]] for uri in poses["source_uri"].unique()}
    poses["source_uri"] = [f"/data/posetrack/{names[id_of_base[u]]}" for u in poses["source_uri"]]
    assert poses["source_uri"].map(lambda u: u.rsplit("/", 1)[-1]).duplicated().any()
    got = evaluate(poses, pt, per_image=True)
    keep = set(POSETRACK_NAMES) - {"head_bottom", "head_top"}
    want = direct_stats(coco_kept(ann, keep), export_coco(noisy_poses(seed), coco_ids))
    np.testing.assert_allclose(stats_of(got), want, atol=1e-12)
    assert sorted(r.file_name for r in got.per_image) == sorted(names.values())


def test_layouts_are_detected_by_names_then_size(ann):
    assert keypoint_set_of(crowdpose_file(ann, neck=True)) is CROWDPOSE14
    assert keypoint_set_of(posetrack_file(ann)[0]) is POSETRACK17
    unnamed = dict(crowdpose_file(ann, neck=True), categories=[{"id": 1, "name": "person"}])
    assert keypoint_set_of(unnamed) is CROWDPOSE14
    assert [CROWDPOSE14.keypoints[i] for i in CROWDPOSE14.scored] == CROWDPOSE_NAMES[:12] + ["neck"]
    np.testing.assert_allclose(CROWDPOSE14.scored_sigmas,
                               np.array([.79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89, .89, .79]) / 10)


def test_unsupported_layout_is_named(ann):
    mpii = dict(ann, categories=[{"id": 1, "name": "person", "keypoints": [f"j{i}" for i in range(16)]}])
    with pytest.raises(ValueError, match=r"unsupported keypoint layout \(16 keypoints: j0, j1"):
        evaluate([], mpii)


def test_results_list_in_another_layout_is_refused(ann):
    results = export_coco(import_coco(ann), image_ids_from_annotations(ann))
    with pytest.raises(ValueError, match="has 17 keypoints but the annotations use the crowdpose-14 layout"):
        evaluate(results, crowdpose_file(ann, neck=False))
