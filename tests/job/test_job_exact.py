"""End to end, inline and on local Ray, with a stand-in network whose maps are rendered from known
skeletons: the poses must equal those skeletons; bad inputs land in `errors`, the rest completes."""
from __future__ import annotations

import functools
import os

import numpy as np
import pytest

import pipeline
from pipeline.job import build_spec, run_job

from pipeline import testing as standin

def _spec(inputs, output, **kw):
    return build_spec({"input": [str(i) for i in inputs], "output": str(output), "images_per_shard": 3,
                       "progress": False, "tracking": False, **kw})


@pytest.fixture
def synthetic(tmp_path):
    """Seven synthetic PNGs (0-3 people each) and their skeletons by file name."""
    folder = tmp_path / "in"
    folder.mkdir()
    truth = {}
    for i in range(1, 8):
        name = f"img{i:02d}.png"
        truth[name] = standin.write_image(folder / name, i, size=(320 + 16 * i, 240))
    return folder, truth


@pytest.mark.parametrize("executor", ["inline", "ray"])
def test_poses_equal_known_skeletons(job_ray, synthetic, tmp_path, executor):
    folder, truth = synthetic
    out = tmp_path / "out"
    summary = run_job(_spec([folder], out, executor=executor), runner_factory=standin.RenderedRunner,
                      model_id="standin@0")
    assert summary.status == "complete" and summary.shards_total == 3 and summary.frames == 7
    assert summary.executor == executor
    assert summary.people == sum(len(t) for t in truth.values())

    poses, frames = pipeline.read_poses(out), pipeline.read_frames(out)
    assert pipeline.read_errors(out).empty
    assert sorted(frames.source_uri.map(os.path.basename)) == sorted(truth)
    for row in frames.itertuples():
        name = os.path.basename(row.source_uri)
        mine = poses[poses.source_uri == row.source_uri].sort_values("person_index")
        assert row.num_people == len(mine) and (row.width, row.height) == (320 + 16 * int(name[3:5]), 240)
        assert list(mine.person_index) == list(range(len(mine)))
        assert (np.diff(mine.score.to_numpy()) <= 0).all(), "people must be in descending score order"
        kp = pipeline.keypoints_array(mine)
        standin.check_people(kp, truth[name], name)
        assert (mine.num_keypoints.to_numpy() == (kp[:, :, 2] > 0).sum(1)).all()
        for box, k in zip(mine.bbox, kp):
            xy = k[np.isfinite(k[:, 0]), :2]
            np.testing.assert_allclose(box, [*xy.min(0), *(xy.max(0) - xy.min(0))], atol=1e-3)
    assert set(poses.model_id) == {"standin@0"} and poses.timestamp_s.isna().all()

    # Filters are pushed down: files whose statistics exclude the source are not read.
    sid = frames.source_id.iloc[0]
    one = pipeline.read_poses(out, filters=[("source_id", "=", sid)], columns=["source_id", "keypoints"])
    assert list(one.columns) == ["source_id", "keypoints"] and set(one.source_id) <= {sid}
    assert len(one) == len(poses[poses.source_id == sid])

    # A second run finds every shard finished and changes nothing.
    before = poses.sort_values(["source_uri", "person_index"]).reset_index(drop=True)
    again = run_job(_spec([folder], out), runner_factory=standin.RenderedRunner, model_id="standin@0")
    assert again.shards_skipped == 3 and again.shards_done == 0 and again.people == summary.people
    after = pipeline.read_poses(out).sort_values(["source_uri", "person_index"]).reset_index(drop=True)
    assert len(after) == len(before)
    np.testing.assert_array_equal(pipeline.keypoints_array(after), pipeline.keypoints_array(before))


@pytest.mark.parametrize("executor", ["inline", "ray"])
def test_bad_inputs_land_in_errors(job_ray, synthetic, tmp_path, media_dir, executor):
    folder, truth = synthetic
    real = (media_dir / "images" / "p1.jpg").read_bytes()
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "truncated.jpg").write_bytes(real[: len(real) // 2])
    (folder / "garbage.png").write_bytes(os.urandom(3000))
    (folder / "notes.txt").write_text("not media")
    (folder / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(5000))
    out = tmp_path / "out"
    summary = run_job(_spec([folder, tmp_path / "missing-folder"], out, executor=executor),
                      runner_factory=standin.RenderedRunner, model_id="standin@0")
    assert summary.status == "complete_with_errors"
    errors = pipeline.read_errors(out)
    by_input = {os.path.basename(e.input): e for e in errors.itertuples()}
    assert set(by_input) == {"empty.jpg", "truncated.jpg", "garbage.png", "notes.txt", "broken.mp4",
                             "missing-folder"}, errors[["input", "message"]]
    expect_stage = {"empty.jpg": "decode", "truncated.jpg": "decode", "garbage.png": "decode",
                    "notes.txt": "list", "broken.mp4": "read", "missing-folder": "list"}
    for name, stage in expect_stage.items():
        e = by_input[name]
        assert e.stage == stage, (name, e.stage, e.message)
        assert name in e.message  # names the input
    assert "empty" in by_input["empty.jpg"].message and "truncated" in by_input["truncated.jpg"].message
    # The good images all completed, exactly.
    frames = pipeline.read_frames(out)
    assert sorted(frames.source_uri.map(os.path.basename)) == sorted(truth)
    assert summary.people == sum(len(t) for t in truth.values())


def test_worker_crash_is_retried_and_poison_shard_goes_to_errors(job_ray, synthetic, tmp_path):
    """On Ray a crashing network only takes its actor's process down (inline, it would take the job)."""
    folder, truth = synthetic
    ray_spec = functools.partial(_spec, executor="ray")
    # 1) The network actor dies once mid-job: Ray restarts it, the shard is retried, nothing is lost.
    out = tmp_path / "once"
    factory = functools.partial(standin.RenderedRunner, crash_once=str(tmp_path / "crashed"))
    s = run_job(ray_spec([folder], out), runner_factory=factory, model_id="standin@0")
    assert (tmp_path / "crashed").exists()
    assert s.status == "complete" and s.frames == 7
    assert pipeline.read_errors(out).empty
    assert len(pipeline.read_poses(out)) == sum(len(t) for t in truth.values())
    # 2) An image that always kills the worker: its shard goes to errors, the other shards finish.
    # The shard is not committed as done: its 3 inputs are pending, retried by the next run.
    out = tmp_path / "poison"
    factory = functools.partial(standin.RenderedRunner, poison={2})
    s = run_job(ray_spec([folder], out, shard_retries=1), runner_factory=factory, model_id="standin@0")
    assert s.status == "incomplete" and s.shards_failed == 1 and s.shards_done == 2 and s.pending == 3
    errors = pipeline.read_errors(out)
    assert sorted(errors.input.map(os.path.basename)) == ["img01.png", "img02.png", "img03.png"]
    assert set(errors.stage) == {"network"} and set(errors.attempts) == {2} and errors.retryable.all()
    frames = pipeline.read_frames(out)
    assert sorted(frames.source_uri.map(os.path.basename)) == [f"img{i:02d}.png" for i in range(4, 8)]
    # Re-running retries only the failed shard (here: without the poison, it now succeeds).
    s = run_job(ray_spec([folder], out), runner_factory=standin.RenderedRunner, model_id="standin@0")
    assert s.shards_skipped == 2 and s.shards_done == 1 and s.status == "complete"
    assert pipeline.read_errors(out).empty and len(pipeline.read_frames(out)) == 7
