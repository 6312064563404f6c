"""The driver (pipeline.job.execute): exports from the spec, settings that never change rows, the executor choice."""
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


def test_same_rows_whatever_the_batch_shard_thread_and_executor_settings(job_ray, media_dir, tmp_path):
    """The default network (openvino backend on CPU) gives identical rows for other batch sizes,
    shard sizes, actor threads and executors (Ray, 1 or 2 threads per actor; inline, this
    machine's threads): throughput settings never change the labels."""
    import numpy as np

    import pipeline

    photos = [str(media_dir / "images" / n) for n in ("p1.jpg", "p3.jpg", "apink3.jpg")]
    rows = []
    for i, settings in enumerate(({"batch_size": 1, "images_per_shard": 1, "cpus_per_actor": 1.0, "executor": "ray"},
                                  {"batch_size": 4, "images_per_shard": 3, "cpus_per_actor": 0.5, "executor": "ray"},
                                  {"batch_size": 2, "images_per_shard": 2, "executor": "inline"})):
        out = tmp_path / f"out{i}"
        summary = run_job(build_spec({"input": photos, "output": str(out), "progress": False, **settings}))
        assert summary.executor == settings["executor"]
        poses = pipeline.read_poses(out).sort_values(["source_uri", "person_index"]).reset_index(drop=True)
        rows.append(poses)
    a = rows[0]
    assert len(a) > 0
    for b in rows[1:]:
        assert list(a.source_uri) == list(b.source_uri)
        np.testing.assert_array_equal(pipeline.keypoints_array(a), pipeline.keypoints_array(b))
        np.testing.assert_array_equal(a.score.to_numpy(), b.score.to_numpy())


def test_auto_runs_small_local_jobs_inline_and_larger_ones_on_ray(job_ray, tmp_path, monkeypatch):
    """executor auto: inline while the frames left to label are at most INLINE_MAX_FRAMES (here
    made 3), else Ray; a cluster address always means Ray."""
    from pipeline.job import execute

    monkeypatch.setattr(execute, "INLINE_MAX_FRAMES", 3)
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(1, 5):
        standin.write_image(folder / f"img{i}.png", i)
    base = {"output": str(tmp_path / "out"), "progress": False, "images_per_shard": 1, "tracking": False}
    small = run_job(build_spec({**base, "input": [str(folder / f"img{i}.png") for i in (1, 2, 3)]}),
                    runner_factory=standin.RenderedRunner, model_id="standin@0")
    assert small.executor == "inline" and small.shards_done == 3
    # 4 images, 3 of them done: 1 frame left to label, inline again
    again = run_job(build_spec({**base, "input": [str(folder)]}), runner_factory=standin.RenderedRunner,
                    model_id="standin@0")
    assert again.executor == "inline" and (again.shards_skipped, again.shards_done) == (3, 1)
    larger = run_job(build_spec({**base, "input": [str(folder)], "output": str(tmp_path / "out2")}),
                     runner_factory=standin.RenderedRunner, model_id="standin@0")
    assert larger.executor == "ray" and larger.shards_done == 4 and larger.status == "complete"
    assert not execute._may_run_inline(build_spec({**base, "input": [str(folder)], "ray_address": "auto"}))
