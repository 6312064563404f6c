"""Job spec validation (YAML + flags), config ids, shard ids and the tables' schemas (no Ray)."""
from __future__ import annotations

import os

import pyarrow as pa
import pytest

from pipeline import tables
from pipeline.job import SpecError, load_spec
from pipeline.job.listing import list_sources
from pipeline.job.shards import image_shards


def _write(tmp_path, text):
    p = tmp_path / "job.yaml"
    p.write_text(text)
    return p


def test_sample_spec_loads_with_paths_from_the_cwd(monkeypatch):
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    monkeypatch.chdir(repo)
    spec = load_spec("jobs/sample-media.yaml")
    assert spec.input[0] == os.path.normpath(os.path.join(repo, "..", "shared", "media", "images"))
    assert spec.output == os.path.join(repo, "out", "sample-media")
    assert spec.model == "omz-lightweight"


@pytest.mark.parametrize("text, needle", [
    ("input: [a]\noutput: b\nbatchsize: 4\n", "unknown key(s) 'batchsize'"),
    ("input: [a]\noutput: b\nbatch_size: 0\n", "key 'batch_size' must be a positive integer"),
    ("input: [a]\noutput: b\nprecision: fp64\n", "key 'precision' must be one of"),
    ("input: [a]\noutput: b\nscales: [1.0, -2]\n", "key 'scales'"),
    ("input: [a]\noutput: b\nparse: {peak_thresh: 0.2}\n", "key 'parse' is invalid"),
    ("input: []\noutput: b\n", "key 'input' must be a non-empty"),
    ("output: b\n", "missing required key(s) 'input'"),
    ("- just a list\n", "must be a mapping"),
    ("input: [a\n", "not valid YAML"),
])
def test_bad_specs_name_the_key_and_file(tmp_path, text, needle):
    path = _write(tmp_path, text)
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert needle in str(err.value) and str(path) in str(err.value)


def test_flags_override_the_file_and_config_id_tracks_results_settings(tmp_path):
    path = _write(tmp_path, "input: [a]\noutput: out\nbatch_size: 4\nparse: {peak_threshold: 0.2}\n")
    base = load_spec(path)
    over = load_spec(path, {"batch_size": 16, "output": None})
    assert over.batch_size == 16 and over.output == base.output == os.path.abspath("out")
    assert over.config_id() == base.config_id()  # throughput knobs do not change results
    other = load_spec(path, {"parse": {"peak_threshold": 0.3}})
    assert other.config_id() != base.config_id()
    assert load_spec(path, {"flip": True}).config_id() != base.config_id()
    with pytest.raises(SpecError, match="key 'device'"):
        load_spec(path, {"device": "tpu"})
    with pytest.raises(SpecError, match="not found"):
        load_spec(tmp_path / "nope.yaml")


def test_shard_ids_are_stable_and_change_with_content_model_and_config(tmp_path):
    for i in range(5):
        (tmp_path / f"{i}.jpg").write_bytes(b"x" * (i + 1))
    src, errors = list_sources([str(tmp_path)])
    assert not errors and [os.path.basename(s.uri) for s in src] == [f"{i}.jpg" for i in range(5)]
    a = [s.shard_id for s in image_shards(src, 2, "m@1", "c1")]
    assert len(a) == 3 and a == [s.shard_id for s in image_shards(list_sources([str(tmp_path)])[0], 2, "m@1", "c1")]
    assert a != [s.shard_id for s in image_shards(src, 2, "m@2", "c1")]
    assert a != [s.shard_id for s in image_shards(src, 2, "m@1", "c2")]
    (tmp_path / "4.jpg").write_bytes(b"changed!")
    b = [s.shard_id for s in image_shards(list_sources([str(tmp_path)])[0], 2, "m@1", "c1")]
    assert a[:2] == b[:2] and a[2] != b[2]  # only the shard holding the changed file is new


def test_tables_follow_the_schema_json():
    poses = tables.schema("poses")
    assert poses.field("keypoints").type == pa.list_(pa.float32(), 54)
    assert poses.field("bbox").type == pa.list_(pa.float32(), 4)
    assert not poses.field("score").nullable and poses.field("track_id").nullable
    assert tables.schema("errors").field("time_utc").type == pa.timestamp("ms", tz="UTC")
    assert "source_id" not in tables.file_schema("poses").names
    assert tables.versions() == {"poses": 1, "frames": 1, "errors": 1, "tracks": 1}
    with pytest.raises(ValueError, match="unknown column type"):
        tables.parse_type("list<float16>")


def test_cli_reports_a_bad_spec_before_any_work(tmp_path, capsys):
    from pipeline.cli import main

    path = _write(tmp_path, f"input: [{tmp_path}]\noutput: {tmp_path / 'out'}\nimages_per_shard: many\n")
    assert main(["run", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "invalid job spec" in err and "'images_per_shard'" in err and str(path) in err
    assert not (tmp_path / "out").exists()
    assert main(["run", "--config", str(path), "--images-per-shard", "4", "--model", "no-such-net",
                 "--no-progress"]) == 2
    assert "no-such-net" in capsys.readouterr().err


def test_a_rewritten_shard_holds_exactly_the_new_attempts_rows(tmp_path):
    """A killed attempt may have written files; the next attempt's rows replace them exactly."""
    import numpy as np

    import pipeline
    from pipeline.job.records import FrameMeta, Shard, Source
    from pipeline.job.stages import WriteContext, write_shard_rows
    from pipeline.parsing import ParseConfig
    from pipeline.poses import Poses

    a, b = Source("/x/a.jpg", "image", 1, "1", "aaaa"), Source("/x/b.jpg", "image", 1, "1", "bbbb")
    shard = Shard("s1", "images", (a, b))
    ctx = WriteContext(str(tmp_path), "m@1", "c1", ParseConfig())
    kp = np.zeros((2, 18, 3), np.float32)
    kp[:, :, 2] = 0.9
    people = Poses(kp, np.array([0.5, 0.7], np.float32))
    metas = [FrameMeta(s.uri, s.source_id, 0, None, 10, 10) for s in (a, b)]
    write_shard_rows(metas, [people, people], shard, ctx, [])
    assert len(pipeline.read_poses(tmp_path)) == 4 and len(pipeline.read_frames(tmp_path)) == 2
    write_shard_rows(metas[:1], [Poses.empty()], shard, ctx, [])  # b failed this time, a has nobody
    assert pipeline.read_poses(tmp_path).empty
    assert list(pipeline.read_frames(tmp_path).source_uri) == ["/x/a.jpg"]
