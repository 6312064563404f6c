"""The driver (pipeline.job.execute): exports run from the spec at the end of a job."""
from __future__ import annotations

import json

from pipeline import testing as standin
from pipeline.job import build_spec, run_job


def test_exports_from_the_spec(job_ray, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    truth = {f"img{i}.png": standin.write_image(folder / f"img{i}.png", i) for i in (1, 3)}
    dest = tmp_path / "openpose"
    spec = build_spec({"input": [str(folder)], "output": str(tmp_path / "out"), "progress": False,
                       "exports": {"openpose-json": {"dest": str(dest), "layout": "body25"}}})
    summary = run_job(spec, runner_factory=standin.RenderedRunner, model_id="standin@0")
    assert summary.exports["openpose-json"]["ok"] and summary.exports["openpose-json"]["files_written"] == 2
    for name, sk in truth.items():
        body = json.loads((dest / f"{name[:-4]}_keypoints.json").read_text())
        assert body["version"] == 1.3 and len(body["people"]) == len(sk)
        assert all(len(p["pose_keypoints_2d"]) == 25 * 3 for p in body["people"])


def test_same_rows_whatever_the_batch_shard_and_thread_settings(job_ray, media_dir, tmp_path):
    """The default network (openvino backend on CPU) gives identical rows for other batch sizes,
    shard sizes and actor threads: throughput settings never change the labels."""
    import numpy as np

    import pipeline

    photos = [str(media_dir / "images" / n) for n in ("p1.jpg", "p3.jpg", "apink3.jpg")]
    rows = []
    for i, settings in enumerate(({"batch_size": 1, "images_per_shard": 1, "cpus_per_actor": 1.0},
                                  {"batch_size": 4, "images_per_shard": 3, "cpus_per_actor": 0.5})):
        out = tmp_path / f"out{i}"
        run_job(build_spec({"input": photos, "output": str(out), "progress": False, **settings}))
        poses = pipeline.read_poses(out).sort_values(["source_uri", "person_index"]).reset_index(drop=True)
        rows.append(poses)
    a, b = rows
    assert len(a) == len(b) > 0 and list(a.source_uri) == list(b.source_uri)
    np.testing.assert_array_equal(pipeline.keypoints_array(a), pipeline.keypoints_array(b))
    np.testing.assert_array_equal(a.score.to_numpy(), b.score.to_numpy())
