"""poses_table: poses.v1 frames built from keypoint arrays, one-file Parquet output, and
read_poses_file over such a file and over a real job output, whose source_ids imported rows share."""
from __future__ import annotations

import numpy as np
import pytest

import pipeline
from pipeline.evaluation import export_coco, image_ids_from_annotations, import_coco
from pipeline.evaluation.poses_table import job_source_ids, poses_frame, read_poses_file, write_poses_parquet
from pipeline.job import build_spec, run_job
from pipeline.job.listing import source_id
from pipeline.testing import RenderedRunner, write_image

IMAGE_IDS = (1, 2, 3, 5)  # 1, 2, 3 and 1 people


@pytest.fixture(scope="module")
def job_output(tmp_path_factory, ray_local):
    """A real posepipe job (the stand-in network on local Ray) over synthetic images named like
    COCO's -> (image folder, job output folder)."""
    root = tmp_path_factory.mktemp("poses_table")
    folder = root / "images"
    folder.mkdir()
    for i in IMAGE_IDS:
        write_image(folder / f"{i:012d}.png", i)
    out = root / "out"
    spec = build_spec({"input": [str(folder)], "output": str(out), "progress": False, "tracking": False})
    assert run_job(spec, runner_factory=RenderedRunner, model_id="standin@0").status == "complete"
    return folder, out


def _annotations() -> dict:
    images = [{"id": i, "file_name": f"{i:012d}.png", "width": 320, "height": 240} for i in IMAGE_IDS]
    return {"images": images, "annotations": [], "categories": [{"id": 1, "name": "person"}]}


def _sorted_boxes(df, sid: str) -> np.ndarray:
    boxes = np.stack(df.loc[df["source_id"] == sid, "bbox"].to_numpy())
    return boxes[np.lexsort(boxes.T[::-1])]


def test_imported_results_join_with_the_job_output_on_source_id(job_output):
    folder, out = job_output
    job = read_poses_file(str(out))
    assert len(job) == 7 and job["source_uri"].nunique() == len(IMAGE_IDS)
    # The job's rows as another tool's COCO results, imported back for the same image files.
    results = export_coco(job, image_ids_from_annotations(_annotations()))
    imported = import_coco(results, _annotations(), image_root=str(folder))
    assert dict(zip(imported["source_uri"], imported["source_id"])) == dict(zip(job["source_uri"], job["source_id"]))
    for sid in job["source_id"].unique():  # the same boxes (the job's bbox rule) per source
        np.testing.assert_allclose(_sorted_boxes(imported, sid), _sorted_boxes(job, sid), atol=1e-3)


def test_read_poses_file_reads_a_job_output_and_filters_sources(job_output):
    _, out = job_output
    everything = pipeline.read_poses(str(out))
    one = everything["source_uri"].iloc[0]
    picked = read_poses_file(str(out), source_uris=[one])
    assert len(picked) == (everything["source_uri"] == one).sum() > 0 and set(picked["source_uri"]) == {one}
    assert len(read_poses_file(str(out), source_uris=[])) == 0
    with pytest.raises(FileNotFoundError, match="no poses table under .*pass a posepipe job output"):
        read_poses_file(str(out / "images"))


def test_read_poses_file_reads_a_parquet_file_and_filters_sources(ann_path, tmp_path):
    table = tmp_path / "gt.parquet"
    gt = import_coco(ann_path, output_uri=str(table))
    back = read_poses_file(str(table))
    assert back["source_uri"].tolist() == gt["source_uri"].tolist()
    np.testing.assert_array_equal(pipeline.keypoints_array(back), pipeline.keypoints_array(gt))
    first = gt["source_uri"].iloc[0]
    assert read_poses_file(str(table), [first])["source_uri"].tolist() == [first] * (gt["source_uri"] == first).sum()
    with pytest.raises(FileNotFoundError, match="poses file .*missing.parquet not found"):
        read_poses_file(str(tmp_path / "missing.parquet"))


def test_poses_frame_rows_of_images_that_are_not_there(tmp_path):
    kps = np.full((2, 18, 3), np.nan, np.float32)
    kps[..., 2] = 0
    kps[0, :2] = [(5, 6, 0.5), (9, 16, 0.7)]
    kps[1, 3] = (1, 1, 0.2)
    uris = [str(tmp_path / "gone.jpg"), str(tmp_path / "gone.jpg")]
    df = poses_frame(uris, kps, [0.3, 0.8], model_id="m", config_id="c", shard_id="s")
    assert df["person_index"].tolist() == [0, 1] and df["score"].tolist() == pytest.approx([0.8, 0.3])
    np.testing.assert_array_equal(np.stack(df["bbox"]), [[1, 1, 0, 0], [5, 6, 4, 10]])
    assert df["num_keypoints"].tolist() == [1, 2]
    assert set(df["source_id"]) == {source_id(uris[0], 0, "")} == set(job_source_ids(uris[:1]))
    write_poses_parquet(df, str(tmp_path / "p.parquet"))  # schema-checked on write
    with pytest.raises(ValueError, match="2 URIs, 2 keypoint sets and 1 scores"):
        poses_frame(uris, kps, [0.3], model_id="m", config_id="c", shard_id="s")
