"""Inputs inside containers (pipeline.job.containers): WebDataset tar shards, Parquet files with an
image-bytes column (as Hugging Face datasets writes them) and CSV/JSONL manifests with pass-through
columns, locally and on S3; a corrupt member is an errors row and the rest is labelled exactly."""
from __future__ import annotations

import io
import json
import os
import tarfile

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import pipeline
from pipeline import testing as standin
from pipeline.job import build_spec, run_job


def _png(tmp_path, image_id: int) -> tuple[bytes, object]:
    path = tmp_path / f"src{image_id}.png"
    truth = standin.write_image(path, image_id)
    return path.read_bytes(), truth


@pytest.fixture
def containers(tmp_path):
    """A tar shard, an image-bytes Parquet file and a CSV manifest; returns (folder, {uri: truth})."""
    d = tmp_path / "in"
    d.mkdir()
    truth = {}
    with tarfile.open(d / "shard-000.tar", "w") as tar:
        for key, iid in (("s0", 1), ("s1", 2), ("s2", 3)):
            data, sk = _png(tmp_path, iid)
            for name, blob in ((f"{key}.png", data), (f"{key}.json", json.dumps({"id": iid}).encode())):
                info = tarfile.TarInfo(name)
                info.size = len(blob)
                tar.addfile(info, io.BytesIO(blob))
            truth[f"{d}/shard-000.tar#{key}.png"] = sk
        info = tarfile.TarInfo("broken.jpg")
        info.size = 10
        tar.addfile(info, io.BytesIO(b"\xff\xd8garbage!"))
    rows = []
    for i, iid in enumerate((5, 6)):
        data, sk = _png(tmp_path, iid)
        rows.append({"image": {"bytes": data, "path": f"img{i}.png"}, "text": f"row {i}"})
        truth[f"{d}/hf.parquet#row={i}"] = sk
    rows.append({"image": {"bytes": b"not an image", "path": "bad.png"}, "text": "bad"})
    pq.write_table(pa.Table.from_pylist(rows), d / "hf.parquet")
    photos = tmp_path / "photos"
    photos.mkdir()
    lines = ["uri,caption,split"]
    for iid in (7, 9):
        truth[str(photos / f"p{iid}.png")] = standin.write_image(photos / f"p{iid}.png", iid)
        lines.append(f"{photos / f'p{iid}.png'},person {iid},train")
    (d / "manifest.csv").write_text("\n".join(lines) + "\n")
    return d, truth


def _check(out, truth, storage_options=None):
    frames = pipeline.read_frames(out, storage_options=storage_options)
    assert sorted(frames.source_uri) == sorted(truth)
    poses = pipeline.read_poses(out, storage_options=storage_options)
    for uri, sk in truth.items():
        standin.check_people(pipeline.keypoints_array(poses[poses.source_uri == uri]), sk, uri)
    return frames


def test_tar_parquet_and_manifest_inputs(job_ray, containers, tmp_path):
    d, truth = containers
    out = tmp_path / "out"
    spec = build_spec({"input": [str(d)], "output": str(out), "progress": False})
    summary = run_job(spec, runner_factory=standin.RenderedRunner, model_id="standin@0")
    assert summary.status == "complete_with_errors"
    frames = _check(out, truth)
    errors = pipeline.read_errors(out)
    assert sorted(errors.input.map(os.path.basename)) == ["hf.parquet#row=2", "shard-000.tar#broken.jpg"]
    assert not errors.retryable.any()
    manifest_rows = frames[frames.source_uri.str.contains("/photos/")].sort_values("source_uri")
    assert list(manifest_rows.caption) == ["person 7", "person 9"] and set(manifest_rows.split) == {"train"}
    assert frames[~frames.source_uri.str.contains("/photos/")].caption.isna().all()
    again = run_job(spec, runner_factory=standin.RenderedRunner, model_id="standin@0")
    assert again.shards_done == 0
    _check(out, truth)


def test_tar_shard_on_s3(job_ray, containers, s3, tmp_path):
    d, truth = containers
    fs = s3.fs()
    fs.mkdir("shards")
    fs.put_file(str(d / "shard-000.tar"), "shards/in/shard-000.tar")
    out = "s3://shards/out"
    spec = build_spec({"input": ["s3://shards/in/"], "output": out, "progress": False,
                       "storage_options": s3.options})
    run_job(spec, runner_factory=standin.RenderedRunner, model_id="standin@0")
    expected = {k.replace(str(d), "s3://shards/in"): v for k, v in truth.items() if ".tar#" in k}
    _check(out, expected, s3.options)


def test_pass_through_columns_and_later_commits_without_them(job_ray, containers, tmp_path):
    """A manifest adds columns to frames; shards of plain files committed later still commit."""
    d, truth = containers
    out = tmp_path / "out"
    manifest_only = build_spec({"input": [str(d / "manifest.csv")], "output": str(out), "progress": False})
    run_job(manifest_only, runner_factory=standin.RenderedRunner, model_id="standin@0")
    plain = tmp_path / "plain"
    plain.mkdir()
    truth_plain = {str(plain / "q.png"): standin.write_image(plain / "q.png", 11)}
    both = build_spec({"input": [str(d / "manifest.csv"), str(plain)], "output": str(out), "progress": False})
    run_job(both, runner_factory=standin.RenderedRunner, model_id="standin@0")
    expected = {u: t for u, t in truth.items() if "/photos/" in u} | truth_plain
    frames = _check(out, expected)
    assert frames.set_index("source_uri").caption.isna().get(str(plain / "q.png"))
