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
    # (Parquet part files without the hive key are gone with the Delta layout: source_id is a column.)
    assert "source_id" in tables.schema("poses").names
    assert tables.versions() == {"poses": 1, "frames": 1, "errors": 1, "tracks": 1, "shard_log": 1}
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


# --- one source per setting, the new keys, secrets -------------------------------------------------

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_docs_settings_table_is_the_generated_one():
    from pipeline.job.spec import settings_table

    text = open(os.path.join(REPO, "docs", "job.md"), encoding="utf-8").read()
    begin = "<!-- settings table: generated by pipeline.job.spec.settings_table() -->\n"
    assert begin in text, "docs/job.md lost its settings-table markers"
    section = text.split(begin, 1)[1].split("<!-- end of settings table -->", 1)[0]
    assert section == settings_table(), (
        "docs/job.md's settings table is out of step with JobSpec; paste the output of "
        "python -c 'from pipeline.job.spec import settings_table; print(settings_table())'")


def test_every_field_is_declared_once_with_a_setting():
    import dataclasses

    from pipeline.job.spec import JobSpec, settings, settings_table

    names = [f.name for f in dataclasses.fields(JobSpec)]
    assert list(settings()) == names and all(s.help for s in settings().values())
    table = settings_table()
    assert all(f"| `{n}` |" in table for n in names)
    for new in ("backend", "track", "target_fps", "start_s", "end_s", "compact", "max_pixels", "max_aspect"):
        assert new in names


def test_new_keys_defaults_and_values(tmp_path):
    path = _write(tmp_path, "input: [a]\noutput: b\n")
    spec = load_spec(path)
    assert (spec.backend, spec.track, spec.target_fps, spec.start_s, spec.end_s, spec.compact,
            spec.max_pixels, spec.max_aspect) == ("auto", {}, None, None, None, False, 40_000_000, 10.0)
    from pipeline.video import TrackConfig

    assert spec.track_config() == TrackConfig()
    spec = load_spec(_write(tmp_path, "input: [a]\noutput: b\nbackend: openvino\ntrack: {min_similarity: 0.6}\n"
                                      "target_fps: 2\nstart_s: 1.5\nend_s: 30\ncompact: true\n"
                                      "max_pixels: 1000000\nmax_aspect: 4\n"))
    assert spec.backend == "openvino" and spec.track_config().min_similarity == 0.6 and spec.target_fps == 2.0
    assert (spec.start_s, spec.end_s, spec.compact, spec.max_pixels, spec.max_aspect) == (1.5, 30.0, True, 10**6, 4.0)


@pytest.mark.parametrize("text, needle", [
    ("backend: tensorrt\n", "key 'backend' must be one of auto, torch, openvino"),
    ("track: {max_gapp: 3}\n", "key 'track' is invalid"),
    ("track: {similarity: cosine}\n", "key 'track' is invalid: TrackConfig.similarity"),
    ("target_fps: 0\n", "key 'target_fps' must be a positive number or null"),
    ("target_fps: 5\nframe_step: 2\n", "give target_fps or frame_step, not both"),
    ("start_s: -1\n", "key 'start_s' must be a number >= 0"),
    ("executor: inline\nray_address: auto\n", "inline runs in this process, not on the Ray cluster 'auto'"),
    ("executor: dask\n", "key 'executor' must be one of auto, ray, inline"),
    ("start_s: 10\nend_s: 10\n", "key 'end_s' must be greater than start_s"),
    ("compact: yes please\n", "key 'compact' must be true or false"),
    ("max_pixels: 0\n", "key 'max_pixels' must be a positive integer"),
    ("max_aspect: 0.5\n", "key 'max_aspect' must be a number >= 1"),
    ("batchsize: 4\n", "'batchsize' (did you mean 'batch_size'?)"),
])
def test_new_keys_are_checked(tmp_path, text, needle):
    path = _write(tmp_path, "input: [a]\noutput: b\n" + text)
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert needle in str(err.value) and str(path) in str(err.value)


def test_track_errors_name_the_bad_track_key(tmp_path):
    with pytest.raises(SpecError, match="max_gapp"):
        load_spec(_write(tmp_path, "input: [a]\noutput: b\ntrack: {max_gapp: 3}\n"))


def test_config_id_follows_the_settings_that_change_rows(tmp_path):
    path = _write(tmp_path, "input: [a]\noutput: out\n")
    base = load_spec(path).config_id()
    for changed in ({"track": {"min_similarity": 0.5}}, {"target_fps": 5.0}, {"start_s": 2.0}, {"end_s": 9.0},
                    {"scales": [1.0, 2.0]}, {"precision": "fp16"}):
        assert load_spec(path, changed).config_id() != base, changed
    for same in ({"backend": "torch"}, {"compact": True}, {"images_per_shard": 3}, {"frames_per_shard": 7},
                 {"max_pixels": 10}, {"max_aspect": 2.0}, {"batch_size": 1}, {"pool_size": 3},
                 {"executor": "inline"}):
        assert load_spec(path, same).config_id() == base, same
    assert load_spec(path, {"track": {"min_similarity": 0.3}}).config_id() == base  # the default: same rows


def test_storage_options_are_checked_against_the_filesystem(tmp_path):
    path = _write(tmp_path, "input: [s3://bucket/in/]\noutput: s3://bucket/out\n"
                            "storage_options: {endpoint: 'http://127.0.0.1:9000'}\n")
    with pytest.raises(SpecError) as err:
        load_spec(path)
    text = str(err.value)
    assert str(path) in text and "key 'storage_options'" in text
    assert "'endpoint' (did you mean 'endpoint_url'?)" in text and "accepted keys:" in text
    ok = _write(tmp_path, "input: [s3://bucket/in/]\noutput: s3://bucket/out\n"
                          "storage_options: {endpoint_url: 'http://127.0.0.1:9000', key: k, secret: s}\n")
    assert load_spec(ok).storage_options["endpoint_url"] == "http://127.0.0.1:9000"
    with pytest.raises(SpecError, match="local paths, which take no storage_options"):
        load_spec(_write(tmp_path, "input: [a]\noutput: b\nstorage_options: {anon: true}\n"))


def test_to_dict_masks_every_planted_secret(tmp_path):
    import json

    planted = ["PLANTED-KEY-1", "PLANTED-SECRET-2", "PLANTED-NESTED-3", "PLANTED-SESSION-4", "PLANTED-URL-5",
               "PLANTED-MODELS-6", "PLANTED-INPUT-7"]
    spec = load_spec(None, {
        "input": ["s3://u:PLANTED-INPUT-7@bucket/in/"], "output": "s3://bucket/out",
        "model_dir": "https://u:PLANTED-MODELS-6@models.example/m",
        "storage_options": {"key": planted[0], "secret": planted[1],
                            "client_kwargs": {"aws_secret_access_key": planted[2], "region_name": "eu-west-1"},
                            "token": planted[3], "endpoint_url": "https://me:PLANTED-URL-5@s3.example:9000"}})
    text = json.dumps(spec.to_dict())
    assert not [p for p in planted if p in text], text
    d = spec.to_dict()
    assert d["storage_options"]["client_kwargs"] == {"aws_secret_access_key": "***", "region_name": "eu-west-1"}
    assert d["storage_options"]["endpoint_url"] == "https://me:***@s3.example:9000"
    assert spec.storage_options["key"] == planted[0]  # the job itself still has them


def test_literal_inputs_keep_their_prefix_and_become_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = load_spec(None, {"input": ["literal:shots/take[1].jpg", "s3://b/x[2].jpg"], "output": "out"})
    assert spec.input == (f"literal:{tmp_path}/shots/take[1].jpg", "s3://b/x[2].jpg")


def test_spec_validation_never_imports_torch_or_ray(tmp_path):
    """posepipe submit validates on a laptop: checking a spec (model name, parse, track, S3 options) stays light."""
    import subprocess
    import sys

    code = ("import sys; from pipeline.job.spec import load_spec; "
            "load_spec(None, {'input': ['s3://b/in/'], 'output': 's3://b/out', 'model': 'omz-lightweight', "
            "'parse': {'peak_threshold': 0.2}, 'track': {'min_similarity': 0.5}, "
            "'storage_options': {'endpoint_url': 'http://127.0.0.1:1'}}); "
            "print(sorted(m for m in ('torch', 'ray') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
