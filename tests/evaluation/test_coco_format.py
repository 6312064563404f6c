"""export_coco / import_coco against the real COCO val2017 mini ground truth."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipeline import tables
from pipeline import keypoints_array
from pipeline.evaluation import export_coco, image_ids_from_annotations, import_coco
from pipeline.skeleton import COCO17_FROM_COCO18, KEYPOINTS


def test_import_ground_truth_maps_coco17_to_coco18(ann, ann_path):
    df = import_coco(ann_path)
    people = [a for a in ann["annotations"] if not a["iscrowd"]]
    assert len(df) == len(people) == 14
    assert list(df.columns) == [f.name for f in tables.schema("poses")]
    kps = keypoints_array(df)
    names = {img["id"]: img["file_name"] for img in ann["images"]}
    # rows are ordered by image; match each row to its annotation through the file name + keypoints
    by_file = {}
    for a in people:
        by_file.setdefault(names[a["image_id"]], []).append(np.asarray(a["keypoints"], float).reshape(17, 3))
    r_sh, l_sh, neck = KEYPOINTS.index("r_shoulder"), KEYPOINTS.index("l_shoulder"), KEYPOINTS.index("neck")
    for row, kp in zip(df.itertuples(), kps):
        assert row.source_uri == f"{ann_path.parent}/{row.source_uri.rsplit('/', 1)[1]}"
        candidates = by_file.pop(row.source_uri.rsplit("/", 1)[1])
        gt = candidates.pop(next(i for i, c in enumerate(candidates)
                                 if np.array_equal(np.nan_to_num(kp[list(COCO17_FROM_COCO18), :2]),
                                                   np.where(c[:, 2:] > 0, c[:, :2], 0))))
        if candidates:
            by_file[row.source_uri.rsplit("/", 1)[1]] = candidates
        labelled = gt[:, 2] > 0
        assert np.array_equal(kp[list(COCO17_FROM_COCO18), 2] > 0, labelled)
        assert np.isnan(kp[list(COCO17_FROM_COCO18)][~labelled, :2]).all()
        if kp[r_sh, 2] > 0 and kp[l_sh, 2] > 0:
            np.testing.assert_allclose(kp[neck, :2], (kp[r_sh, :2] + kp[l_sh, :2]) / 2)
        else:
            assert kp[neck, 2] == 0 and np.isnan(kp[neck, :2]).all()
        assert row.num_keypoints == int((kp[:, 2] > 0).sum())
        assert row.score == 1.0 and row.frame_index == 0 and pd.isna(row.track_id)
    assert not by_file
    # person_index counts 0.. within each image
    for _, g in df.groupby("source_uri"):
        assert sorted(g["person_index"]) == list(range(len(g)))


def test_export_of_ground_truth_reproduces_its_keypoints(ann, ann_path):
    results = export_coco(import_coco(ann_path), image_ids_from_annotations(ann_path))
    labelled = [a for a in ann["annotations"] if not a["iscrowd"] and a["num_keypoints"] > 0]
    assert len(results) == len(labelled)  # people with no labelled keypoint are not exported
    expected = sorted((a["image_id"], tuple(np.where(np.repeat(np.asarray(a["keypoints"][2::3]) > 0, 3),
                                                     np.asarray(a["keypoints"], float), 0)
                                            .reshape(17, 3)[:, :2].ravel()))
                      for a in labelled)
    got = sorted((r["image_id"], tuple(np.asarray(r["keypoints"]).reshape(17, 3)[:, :2].ravel())) for r in results)
    assert got == expected
    for r in results:
        assert r["category_id"] == 1 and len(r["keypoints"]) == 51 and r["score"] == 1.0
        v = np.asarray(r["keypoints"]).reshape(17, 3)
        assert ((v[:, 2] == 0) == (v[:, :2] == 0).all(axis=1)).all()


def test_export_import_round_trip(ann_path, noisy_poses):
    df = noisy_poses(0)
    df = df[df["num_keypoints"] > 0].reset_index(drop=True)
    back = import_coco(export_coco(df, image_ids_from_annotations(ann_path)), ann_path)
    assert len(back) == len(df)
    key = ["source_uri", "score"]
    a = df.sort_values(key).reset_index(drop=True)
    b = back.sort_values(key).reset_index(drop=True)
    assert (a["source_uri"] == b["source_uri"]).all()
    np.testing.assert_array_equal(a["score"], b["score"])
    ka, kb = keypoints_array(a), keypoints_array(b)
    body = list(COCO17_FROM_COCO18)
    np.testing.assert_array_equal(ka[:, body], kb[:, body])  # float32 survives JSON exactly
    assert b["model_id"].str.startswith("coco-results").all()


def test_parquet_output_has_the_poses_schema(ann_path, tmp_path):
    out = tmp_path / "gt.parquet"
    df = import_coco(ann_path, output_uri=str(out))
    schema = pq.read_schema(out)
    assert schema.equals(tables.schema("poses"), check_metadata=False)
    back = pd.read_parquet(out)
    assert (back["source_uri"] == df["source_uri"]).all()
    np.testing.assert_array_equal(keypoints_array(back), keypoints_array(df))
    assert back["track_id"].isna().all() and back["timestamp_s"].isna().all()


def test_image_ids_from_numeric_file_stem_and_video_keys(ann_path):
    df = import_coco(ann_path)
    by_stem = export_coco(df)  # COCO file names are the zero-padded image id
    by_name = export_coco(df, image_ids_from_annotations(ann_path))
    assert [r["image_id"] for r in by_stem] == [r["image_id"] for r in by_name]
    video = df.iloc[:1].assign(source_uri="s3://b/walk.mp4", frame_index=7)
    with pytest.raises(ValueError, match=r"walk.mp4 frame 7.*\(source_uri, frame_index\)"):
        export_coco(video, {"walk.mp4": 1})
    assert export_coco(video, {("s3://b/walk.mp4", 7): 42})[0]["image_id"] == 42


def test_bad_inputs_get_clear_errors(ann, ann_path, tmp_path):
    results = export_coco(import_coco(ann_path))
    with pytest.raises(ValueError, match="pass annotations="):
        import_coco(results)
    with pytest.raises(ValueError, match=r"image ids \[999\]"):
        import_coco([dict(results[0], image_id=999)], ann)
    with pytest.raises(ValueError, match="check that the annotation file lists this image"):
        export_coco(import_coco(ann_path), {"other.jpg": 1})
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json is not valid JSON"):
        import_coco(bad)
    with pytest.raises(FileNotFoundError, match="missing.json not found"):
        import_coco(tmp_path / "missing.json")


def test_other_tools_results_keep_scores_and_drop_zero_score_keypoints(ann_path):
    kp = np.zeros((17, 3))
    kp[:, :2] = np.arange(34).reshape(17, 2) + 100
    kp[:, 2] = np.linspace(0.1, 0.9, 17)
    kp[3] = (250, 250, 0)  # some tools write every keypoint and mark absent ones with score 0
    kp[5, 2], kp[6, 2] = 0.3, 0.7  # both shoulders present -> neck
    df = import_coco([{"image_id": 785, "category_id": 1, "keypoints": kp.ravel().tolist(), "score": 0.42}],
                     ann_path)
    k18 = keypoints_array(df)[0]
    body = list(COCO17_FROM_COCO18)
    assert np.isnan(k18[body[3], :2]).all() and k18[body[3], 2] == 0
    np.testing.assert_allclose(k18[body[0]], kp[0], rtol=1e-6)
    neck = k18[KEYPOINTS.index("neck")]
    np.testing.assert_allclose(neck, [(kp[5, 0] + kp[6, 0]) / 2, (kp[5, 1] + kp[6, 1]) / 2, 0.3], rtol=1e-6)
    assert df["num_keypoints"][0] == 17 and df["score"][0] == np.float32(0.42)
    assert df["source_uri"][0].endswith("/000000000785.jpg")
