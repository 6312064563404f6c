"""Exports on Ray: resumable and exactly-once (completion records), stale parts removed, the CLI."""
from __future__ import annotations

import json

import pytest

from pipeline.cli import main
from pipeline.export import export
from pipeline.export.sources import export_stems


def snapshot(dest):
    """{relative path: (mtime_ns, bytes)} of every file under ``dest``."""
    return {str(p.relative_to(dest)): (p.stat().st_mtime_ns, p.read_bytes()) for p in dest.rglob("*") if p.is_file()}


def test_rerun_skips_complete_parts_and_redoes_changed_ones(job_output, tmp_path):
    dest = tmp_path / "op"
    first = export(job_output, "openpose-json", str(dest))
    assert (first.parts, first.parts_written, first.files_written, first.sources, first.frames) == (4, 4, 8, 4, 8)
    before = snapshot(dest)
    assert sum(k.startswith("_export/") for k in before) == 4

    again = export(job_output, "openpose-json", str(dest))
    assert (again.parts_written, again.parts_skipped, again.files_written) == (0, 4, 0)
    assert snapshot(dest) == before

    # a run killed after writing a part's files but before its record: the part is redone
    video_record = next(p for p in (dest / "_export").glob("*.json") if json.loads(p.read_text())["sources"]
                        [p.stem]["frames"] == 5)
    files = json.loads(video_record.read_text())["files"]
    assert len(files) == 5
    video_record.unlink()
    (dest / files[2]).unlink()
    redo = export(job_output, "openpose-json", str(dest))
    assert (redo.parts_written, redo.parts_skipped, redo.files_written) == (1, 3, 5)
    after = snapshot(dest)
    assert {k: v[1] for k, v in after.items()} == {k: v[1] for k, v in before.items()}

    # a record made from other rows (the job output changed since): that part is redone
    record = json.loads(video_record.read_text())
    record["sources"][video_record.stem]["sha256"] = "0" * 64
    video_record.write_text(json.dumps(record))
    assert export(job_output, "openpose-json", str(dest)).parts_written == 1

    # other options: every part is redone
    body25 = export(job_output, "openpose-json", str(dest), layout="body25")
    assert (body25.parts_written, body25.files_written) == (4, 8)
    people = json.loads((dest / files[0]).read_text())["people"]
    assert people and all(len(p["pose_keypoints_2d"]) == 75 for p in people)


def test_parts_no_longer_exported_are_removed(job_output, tmp_path):
    dest = tmp_path / "hf"
    export(job_output, "hf-dataset", str(dest), num_files=1)
    assert (dest / "data" / "train-00000-of-00001.parquet").exists()
    two = export(job_output, "hf-dataset", str(dest), num_files=2)
    assert two.parts_written == two.parts == 2
    names = sorted(p.name for p in (dest / "data").iterdir())
    assert names and all(n.endswith("-of-00002.parquet") for n in names)
    assert sorted(p.stem for p in (dest / "_export").iterdir()) == ["train-00000-of-00002", "train-00001-of-00002"]
    assert not list(dest.rglob(".*.tmp"))


def test_cli_export_and_its_errors(job_output, tmp_path, capsys):
    dest = tmp_path / "cli"
    assert main(["export", "--poses", job_output, "--format", "controlnet", "--output", str(dest),
                 "--resolution", "256"]) == 0
    out = capsys.readouterr().out
    assert "4 part(s) written (8 files)" in out and len(list(dest.rglob("*.png"))) == 8

    assert main(["export", "--poses", job_output, "--format", "controlnet", "--output", str(dest),
                 "--layout", "body25"]) == 2
    assert "controlnet: unknown option(s) layout; it takes resolution" in capsys.readouterr().err

    missing = tmp_path / "no-such-output"
    assert main(["export", "--poses", str(missing), "--format", "openpose-json", "--output", str(dest)]) == 2
    assert f"no frames table under {missing}" in capsys.readouterr().err

    # coco: video frames have no COCO image id in an annotation file: a clear error naming the video
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps({"images": [{"id": 1, "file_name": "p1.jpg"}], "annotations": []}))
    assert main(["export", "--poses", job_output, "--format", "coco", "--output", str(tmp_path / "r.json"),
                 "--annotations", str(ann)]) == 2
    assert "no COCO image id for" in capsys.readouterr().err


def test_unknown_format_and_option():
    with pytest.raises(ValueError, match="unknown export format 'bvh'"):
        export("out", "bvh", "dest")
    with pytest.raises(ValueError, match="openpose-json: unknown option"):
        export("out", "openpose-json", "dest", resolution=512)


def test_export_stems():
    stems = export_stems({"a": "/data/photos/x.jpg", "b": "/data/clips/y.mp4", "c": "/data/photos/sub/z.png"})
    assert stems == {"a": "photos/x", "b": "clips/y", "c": "photos/sub/z"}
    assert export_stems({"a": "/data/x.jpg", "b": "/data/y.jpg"}) == {"a": "x", "b": "y"}
    assert export_stems({"a": "s3://bucket/p/x.jpg", "b": "s3://bucket/q/x.jpg"}) == {"a": "p/x", "b": "q/x"}
    with pytest.raises(ValueError, match="would both be exported as 'x'"):
        export_stems({"a": "/data/x.jpg", "b": "/data/x.png"})


def test_export_to_s3_is_resumable(job_output, s3, tmp_path):
    options, bucket = s3.options, "out"
    fs = s3.fs()
    fs.mkdir(bucket)
    dest = f"s3://{bucket}/openpose"
    first = export(job_output, "openpose-json", dest, storage_options=options)
    assert (first.parts_written, first.files_written) == (4, 8)
    keys = sorted(k[len(f"{bucket}/openpose/"):] for k in fs.find(f"{bucket}/openpose"))
    local = tmp_path / "local"
    export(job_output, "openpose-json", str(local))
    assert keys == sorted(str(p.relative_to(local)) for p in local.rglob("*") if p.is_file())
    assert fs.cat_file(f"{bucket}/openpose/images/p1_keypoints.json") == (local / "images" / "p1_keypoints.json").read_bytes()
    again = export(job_output, "openpose-json", dest, storage_options=options)
    assert (again.parts_written, again.parts_skipped) == (0, 4)
    records = [fs.cat_file(k) for k in fs.find(f"{bucket}/openpose/_export")]
    assert records and not any(options["secret"].encode() in r or options["key"].encode() in r
                               for r in records)  # no credentials in the records
