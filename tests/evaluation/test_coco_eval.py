"""evaluate() against pycocotools' COCOeval run directly on the same files."""
from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from pipeline.evaluation import METRICS, evaluate, export_coco, image_ids_from_annotations, import_coco


def _direct(ann_path, results, tmp_path, img_ids=None) -> np.ndarray:
    """COCOeval stats straight from pycocotools, reading both files from disk."""
    res_file = tmp_path / "direct_results.json"
    res_file.write_text(json.dumps(results))
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(ann_path))
        ev = COCOeval(gt, gt.loadRes(str(res_file)), iouType="keypoints")
        if img_ids is not None:
            ev.params.imgIds = img_ids
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats


def _as_array(stats: dict) -> np.ndarray:
    return np.asarray([-1.0 if stats[m] is None else stats[m] for m in METRICS])


def test_ground_truth_as_results_scores_perfectly(ann_path, tmp_path):
    results = export_coco(import_coco(ann_path), image_ids_from_annotations(ann_path))
    res = evaluate(results, ann_path)
    np.testing.assert_allclose(_as_array(res.stats), 1.0)
    np.testing.assert_allclose(_direct(ann_path, results, tmp_path), 1.0)
    assert [r.ap for r in res.per_image] == pytest.approx([1.0] * 4)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_perturbed_keypoints_match_direct_cocoeval(ann_path, tmp_path, noisy_poses, seed):
    results = export_coco(noisy_poses(seed), image_ids_from_annotations(ann_path))
    rng = np.random.default_rng(seed)
    # a false positive and a detection far from anyone, so precision is below 1
    fake = np.asarray(results[0]["keypoints"]).reshape(17, 3)
    fake[:, :2] += rng.uniform(40, 80, 2)
    results.append(dict(results[0], keypoints=fake.ravel().tolist(), score=0.95))
    res = evaluate(results, ann_path)
    direct = _direct(ann_path, results, tmp_path)
    np.testing.assert_allclose(_as_array(res.stats), direct, rtol=0, atol=1e-12)
    assert 0.2 < res.ap < 1.0  # the perturbation is felt but keeps most people matched


def test_dataframe_input_equals_exported_list(ann_path, noisy_poses):
    df = noisy_poses(3)
    a = evaluate(df, ann_path)
    b = evaluate(export_coco(df, image_ids_from_annotations(ann_path)), ann_path)
    assert a.stats == b.stats and a.per_image == b.per_image


def test_per_image_breakdown(ann, ann_path, tmp_path, noisy_poses):
    results = export_coco(noisy_poses(4), image_ids_from_annotations(ann_path))
    dropped = 40083
    results = [r for r in results if r["image_id"] != dropped]
    res = evaluate(results, ann_path)
    assert [r.image_id for r in res.per_image] == sorted(img["id"] for img in ann["images"])
    for r in res.per_image:
        gt = [a for a in ann["annotations"] if a["image_id"] == r.image_id]
        assert r.num_gt == sum(1 for a in gt if not a["iscrowd"] and a["num_keypoints"] > 0)
        assert r.num_dt == sum(1 for d in results if d["image_id"] == r.image_id)
        assert r.ap == pytest.approx(_direct(ann_path, results, tmp_path, [r.image_id])[0], abs=1e-12)
    assert next(r for r in res.per_image if r.image_id == dropped).ap == 0.0
    assert res.num_gt == sum(r.num_gt for r in res.per_image) == 12
    assert res.num_dt == len(results) == sum(r.num_dt for r in res.per_image)
    # AP over all images is not the mean of per-image APs, but a missed image must pull it below
    # the AP of the remaining images scored together
    rest = [r.image_id for r in res.per_image if r.image_id != dropped]
    assert res.ap < _direct(ann_path, results, tmp_path, rest)[0]
    text = res.table()
    assert "000000040083.jpg" in text and f"{res.ap:.3f}" in text
    assert json.loads(res.to_json())["per_image"][1]["num_dt"] == 0


def test_no_detections_score_zero(ann_path):
    res = evaluate([], ann_path)
    assert res.ap == 0.0 and res.stats["AR"] == 0.0 and res.num_dt == 0


def test_results_on_unknown_images_are_refused(ann_path):
    results = export_coco(import_coco(ann_path), image_ids_from_annotations(ann_path))
    with pytest.raises(ValueError, match=r"image ids \[12345\].*--annotations"):
        evaluate([dict(results[0], image_id=12345)], ann_path)


def test_evaluate_does_not_mutate_results(ann_path):
    results = export_coco(import_coco(ann_path), image_ids_from_annotations(ann_path))
    before = json.dumps(results)
    evaluate(results, ann_path)
    assert json.dumps(results) == before


def test_non_keypoint_annotations_are_refused(ann):
    boxes_only = {"images": ann["images"], "categories": ann["categories"],
                  "annotations": [{"id": 7, "image_id": 785, "category_id": 1, "bbox": [0, 0, 9, 9],
                                   "area": 81, "iscrowd": 0}]}
    with pytest.raises(ValueError, match=r"annotations \[7\] have no 'keypoints'.*not instances"):
        evaluate([], boxes_only)


def test_images_matched_by_relative_path():
    from pipeline.evaluation.coco_eval import image_ids_by_path

    ann = {"images": [{"id": 1, "file_name": "seq1/000001.jpg"}, {"id": 2, "file_name": "seq2/000001.jpg"},
                      {"id": 3, "file_name": "000785.jpg"}]}
    uris = ["/data/val/seq1/000001.jpg", "s3://b/val/seq2/000001.jpg", "/photos/000785.jpg", "/other/seq3/000001.jpg"]
    assert image_ids_by_path(uris, ann) == {uris[0]: 1, uris[1]: 2, uris[2]: 3}
    with pytest.raises(ValueError, match="matches 2 images named '000001.jpg'"):
        image_ids_by_path(["/x/000001.jpg"], {"images": [{"id": 1, "file_name": "000001.jpg"},
                                                         {"id": 2, "file_name": "./000001.jpg"}]})


def test_poses_of_unlisted_images_are_named(ann_path, noisy_poses):
    df = noisy_poses(0)
    df.loc[df.index[0], "source_uri"] = "/elsewhere/not_in_the_file.jpg"
    with pytest.raises(ValueError, match="no image id for /elsewhere/not_in_the_file.jpg frame 0"):
        evaluate(df, ann_path)
