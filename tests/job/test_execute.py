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
