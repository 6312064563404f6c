"""Turning a job spec into a Ray Jobs submission (no cluster needed): checks, spec copy, runtime_env."""
from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import yaml

from pipeline.cluster.submission import PACKAGE_DIR, SPEC_NAME, SubmissionError, build_submission, parse_env_args
from pipeline.job.spec import SpecError


@pytest.fixture(autouse=True)
def staging_in_tmp_path(tmp_path, monkeypatch):
    """Spec copies are staged under the test's tmp_path (submit() deletes them; these tests don't submit)."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))


def write_spec(tmp_path: Path, **settings) -> Path:
    path = tmp_path / "my job.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


def test_spec_copy_joins_the_cluster_and_code_travels(tmp_path):
    spec = write_spec(tmp_path, input=["s3://photos/2024/"], output="s3://labels/2024",
                      images_per_shard=4, storage_options={"anon": False})
    environ = {"AWS_ENDPOINT_URL": "http://s3.local:9000", "AWS_SECRET_ACCESS_KEY": "shh", "HOME": "/root"}
    sub = build_submission(spec, environ=environ, env={"POSEPIPE_MODEL_DIR": "/models"})

    shipped = yaml.safe_load((Path(sub.runtime_env["working_dir"]) / SPEC_NAME).read_text())
    assert shipped["ray_address"] == "auto" and shipped["progress"] is False
    assert shipped["input"] == ["s3://photos/2024/"] and shipped["output"] == "s3://labels/2024"
    assert shipped["images_per_shard"] == 4 and shipped["storage_options"] == {"anon": False}
    assert sub.entrypoint == f"python -m pipeline.cli run --config {SPEC_NAME}"
    staged = Path(sub.runtime_env["working_dir"])
    shipped_code = {p.relative_to(staged).as_posix() for p in staged.rglob("*.py")}
    local_code = {p.relative_to(PACKAGE_DIR.parent).as_posix() for p in PACKAGE_DIR.rglob("*.py")}
    assert shipped_code == local_code and "pipeline/cluster/submission.py" in shipped_code
    assert not list(staged.rglob("__pycache__"))
    # The S3 endpoint is passed through; credentials only when asked for; explicit env added.
    assert sub.runtime_env["env_vars"] == {"AWS_ENDPOINT_URL": "http://s3.local:9000", "POSEPIPE_MODEL_DIR": "/models"}
    assert sub.submission_id.startswith("posepipe-my-job-")
    assert sub.metadata["posepipe_output"] == "s3://labels/2024"


def test_installed_code_mode_ships_only_the_spec(tmp_path):
    spec = write_spec(tmp_path, input="s3://a/b.mp4", output="s3://a/out")
    sub = build_submission(spec, ship_code=False, environ={}, submission_id="run-7")
    assert sub.submission_id == "run-7"
    assert sorted(p.name for p in Path(sub.runtime_env["working_dir"]).iterdir()) == [SPEC_NAME]


def test_local_paths_are_refused_with_what_to_do(tmp_path):
    spec = write_spec(tmp_path, input=["media/images"], output="s3://labels/out")
    with pytest.raises(SubmissionError, match=r"input '.*media/images' is a path on this machine.*s3://"):
        build_submission(spec, environ={})
    spec = write_spec(tmp_path, input=["s3://in/"], output="out/")
    with pytest.raises(SubmissionError, match=r"output .* is a path on this machine"):
        build_submission(spec, environ={})
    # A shared mount is allowed on request, as an absolute path (resolved here, not on the cluster).
    sub = build_submission(spec, environ={}, allow_local_paths=True)
    shipped = yaml.safe_load((Path(sub.runtime_env["working_dir"]) / SPEC_NAME).read_text())
    assert shipped["output"] == str(Path.cwd() / "out")


def test_bad_spec_fails_before_submitting(tmp_path):
    with pytest.raises(SpecError, match="my job.yaml.*batch_sise"):
        build_submission(write_spec(tmp_path, input="s3://a/", output="s3://b/", batch_sise=4), environ={})
    with pytest.raises(SpecError, match="not found"):
        build_submission(tmp_path / "missing.yaml", environ={})


def test_env_arguments():
    assert parse_env_args(["A=1", "B", "C=x=y"], environ={"B": "from-shell"}) == {"A": "1", "B": "from-shell", "C": "x=y"}
    with pytest.raises(SubmissionError, match="MISSING: not set in this shell"):
        parse_env_args(["MISSING"], environ={})
    with pytest.raises(SubmissionError, match="valid variable name"):
        parse_env_args(["1BAD=2"], environ={})


@pytest.mark.parametrize("name", ["s3-images.yaml", "s3-videos.yaml"])
def test_example_cluster_specs_are_valid_submissions(name):
    spec = Path(__file__).resolve().parents[2] / "jobs" / name
    sub = build_submission(spec, environ={}, ship_code=False)
    shipped = yaml.safe_load((Path(sub.runtime_env["working_dir"]) / SPEC_NAME).read_text())
    assert all(u.startswith("s3://") for u in shipped["input"]) and shipped["output"].startswith("s3://")


def test_no_credential_is_shipped(tmp_path):
    planted = ["PLANTED-KEY-1", "PLANTED-SECRET-2", "PLANTED-TOKEN-3", "PLANTED-NESTED-4", "PLANTED-URL-5",
               "PLANTED-OUT-6", "PLANTED-ENV-7"]
    spec = write_spec(tmp_path, input=["s3://photos/2024/"], output="s3://me:PLANTED-OUT-6@labels/2024",
                      storage_options={"key": planted[0], "secret": planted[1], "token": planted[2],
                                       "client_kwargs": {"aws_secret_access_key": planted[3], "region_name": "x"},
                                       "endpoint_url": "https://me:PLANTED-URL-5@s3.local:9000"})
    sub = build_submission(spec, environ={"AWS_ENDPOINT_URL": "http://u:PLANTED-ENV-7@s3.local:9000"})
    staged = Path(sub.runtime_env["working_dir"])
    text = "".join(p.read_text(errors="replace") for p in staged.rglob("*") if p.is_file())
    text += repr(sub.runtime_env) + repr(sub.metadata) + sub.entrypoint
    assert not [p for p in planted if p in text]
    shipped = yaml.safe_load((staged / SPEC_NAME).read_text())
    assert shipped["storage_options"] == {"client_kwargs": {"region_name": "x"},
                                          "endpoint_url": "https://me@s3.local:9000"}
    assert shipped["output"] == "s3://me@labels/2024"
    assert sub.runtime_env["env_vars"] == {"AWS_ENDPOINT_URL": "http://u@s3.local:9000"}
    assert sorted(sub.stripped) == ["output", "storage_options.client_kwargs.aws_secret_access_key",
                                    "storage_options.endpoint_url", "storage_options.key", "storage_options.secret",
                                    "storage_options.token"]


@pytest.mark.parametrize("item", ["AWS_SECRET_ACCESS_KEY=x", "AWS_SESSION_TOKEN=x", "AWS_ACCESS_KEY_ID=x",
                                  "MY_PASSWORD=x", "PROXY=http://u:p@proxy:3128"])
def test_credentials_are_refused_as_env(item):
    with pytest.raises(SubmissionError, match="credentials are not sent with a job"):
        parse_env_args([item], environ={})


def test_overrides_travel_in_the_spec_copy(tmp_path):
    spec = write_spec(tmp_path, input=["s3://a/videos/"], output="s3://a/out", parse={"max_people": 4})
    sub = build_submission(spec, environ={}, ship_code=False,
                           overrides={"target_fps": 2.0, "parse": {"max_people": 4, "peak_threshold": 0.2},
                                      "compact": True, "batch_size": None})
    shipped = yaml.safe_load((Path(sub.runtime_env["working_dir"]) / SPEC_NAME).read_text())
    assert shipped["target_fps"] == 2.0 and shipped["compact"] is True and "batch_size" not in shipped
    assert shipped["parse"] == {"max_people": 4, "peak_threshold": 0.2}
    with pytest.raises(SpecError, match=r"with command-line overrides\): key 'end_s' must be greater than start_s"):
        build_submission(spec, environ={}, overrides={"start_s": 5.0, "end_s": 1.0})
