"""Input from and output to a real S3 API (moto server on 127.0.0.1, credentials enforced) via s3fs."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import pipeline
from pipeline.job import build_spec, run_job
from pipeline.job.execute import JobError

from pipeline import testing as standin


def _spec(inputs, output, options, **kw):
    return build_spec({"input": inputs, "output": output, "images_per_shard": 2, "progress": False,
                       "tracking": False, "storage_options": options, **kw})


def _run(spec):
    return run_job(spec, runner_factory=standin.RenderedRunner, model_id="standin@0")


@pytest.fixture(scope="module")
def bucket(s3, tmp_path_factory):
    """Bucket 'media' with 4 synthetic images under in/ (plus a non-media file); returns their truth."""
    fs = s3.fs()
    fs.mkdir("media")
    folder = tmp_path_factory.mktemp("s3in")
    truth = {}
    for i in (1, 2, 3, 5):
        name = f"img{i}.png"
        truth[name] = standin.write_image(folder / name, i)
        fs.put_file(str(folder / name), f"media/in/{name}")
    fs.pipe_file("media/in/readme.md", b"# not media")
    return truth


def test_s3_input_and_output(job_ray, s3, bucket):
    out = "s3://media/out/job1"
    summary = _run(_spec(["s3://media/in/"], out, s3.options, executor="ray"))  # its workers' logs are checked
    assert summary.status == "complete_with_errors" and summary.frames == 4
    errors = pipeline.read_errors(out, storage_options=s3.options)
    assert list(errors.input) == ["s3://media/in/readme.md"] and errors.stage.item() == "list"
    poses = pipeline.read_poses(out, storage_options=s3.options)
    assert set(poses.source_uri) == {f"s3://media/in/{n}" for n, t in bucket.items() if len(t)}
    for name, truth in bucket.items():
        mine = poses[poses.source_uri == f"s3://media/in/{name}"]
        standin.check_people(pipeline.keypoints_array(mine), truth, name)
    fs = s3.fs()
    manifest = json.loads(fs.cat_file("media/out/job1/_manifest.json"))
    assert manifest["summary"]["frames"] == 4 and manifest["spec"]["storage_options"]["secret"] == "***"
    assert fs.exists("media/out/job1/poses/_delta_log/00000000000000000000.json")  # a Delta table on S3
    # Only committed files are data: a file a killed writer left in the table folder (here a
    # complete Parquet file with extra rows, and a truncated one) never becomes visible.
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq


    extra = io.BytesIO()
    rows = pa.Table.from_pandas(poses.drop(columns=["keypoints_smoothed"], errors="ignore"), preserve_index=False)
    pq.write_table(rows, extra)
    fs.pipe_file("media/out/job1/poses/part-00000-interrupted.snappy.parquet", extra.getvalue())
    fs.pipe_file("media/out/job1/poses/part-00001-truncated.snappy.parquet", extra.getvalue()[:100])
    assert len(pipeline.read_poses(out, storage_options=s3.options)) == len(poses)
    from pipeline.job.maintenance import verify
    from pipeline.job.sink import DeltaSink

    assert verify(DeltaSink(out, s3.options)) == []
    # No credential is written anywhere: not in any object under the output (tables, logs,
    # manifest), nor in the Ray session's logs.
    secrets = [s3.options["key"].encode(), s3.options["secret"].encode()]
    for key in fs.find("media/out/job1"):
        blob = fs.cat_file(key)
        assert not any(s in blob for s in secrets), key
    import ray

    logs = Path(ray._private.worker._global_node.get_session_dir_path()) / "logs"
    for path in logs.rglob("*"):
        if path.is_file():
            assert not any(s in path.read_bytes() for s in secrets), path
    # Resumable on S3 too.
    again = _run(_spec(["s3://media/in/"], out, s3.options))
    assert again.shards_skipped == 2 and again.shards_done == 0
    assert len(pipeline.read_poses(out, storage_options=s3.options)) == len(poses)


def test_missing_bucket_and_wrong_credentials(job_ray, s3, bucket, tmp_path):
    bad_creds = {**s3.options, "key": "AKIANOTAKEY", "secret": "wrong"}
    with pytest.raises(JobError) as err:
        _run(_spec(["s3://no-such-bucket/in/"], str(tmp_path / "o1"), s3.options))
    assert "s3://no-such-bucket/in/" in str(err.value) and "bucket does not exist" in str(err.value)
    with pytest.raises(JobError) as err:
        _run(_spec(["s3://media/in/"], str(tmp_path / "o2"), bad_creds))
    assert "s3://media/in/" in str(err.value) and "credentials" in str(err.value)
    with pytest.raises(JobError) as err:
        _run(_spec(["s3://media/in/"], "s3://no-such-bucket/out", s3.options))
    assert "output" in str(err.value) and "s3://no-such-bucket/out" in str(err.value)
    with pytest.raises(JobError) as err:
        _run(_spec([str(tmp_path)], "s3://media/out/x", bad_creds))
    assert "s3://media/out/x" in str(err.value) and "credentials" in str(err.value)
    # One bad location among good ones: recorded in errors, the rest completes.
    out = str(tmp_path / "o3")
    summary = _run(_spec(["s3://media/in/img1.png", "s3://no-such-bucket/x.png"], out, s3.options))
    assert summary.frames == 1
    errors = pipeline.read_errors(out)
    assert list(errors.input) == ["s3://no-such-bucket/x.png"] and "bucket does not exist" in errors.message.item()


def test_video_on_s3_with_the_real_model(job_ray, s3, media_dir):
    """A video read through s3fs file objects in keyframe-aligned frame-range shards, then tracked."""
    fs = s3.fs()
    fs.mkdir("videos")
    fs.put_file(str(media_dir / "video" / "mmpose-demo-5frames.mp4"), "videos/in/demo.mp4")
    out = "s3://videos/out"
    spec = build_spec({"input": ["s3://videos/in/"], "output": out, "frames_per_shard": 2, "progress": False,
                       "storage_options": s3.options})
    summary = run_job(spec)
    assert summary.status == "complete" and summary.frames == 5
    frames = pipeline.read_frames(out, storage_options=s3.options).sort_values("frame_index")
    assert list(frames.frame_index) == [0, 1, 2, 3, 4] and frames.source_id.nunique() == 1
    assert frames.timestamp_s.to_numpy().tolist() == sorted(frames.timestamp_s) and frames.shard_id.nunique() >= 1
    poses = pipeline.read_poses(out, storage_options=s3.options)
    # Weak poses outside confirmed tracks keep track_id null (pipeline.video tracker); the rest are tracked.
    assert len(poses) == frames.num_people.sum() > 0 and poses.track_id.notna().sum() >= len(poses) // 2
    tracks = pipeline.read_tracks(out, storage_options=s3.options)
    assert tracks.length.sum() == poses.track_id.notna().sum()
    assert set(tracks.source_uri) == {"s3://videos/in/demo.mp4"}
