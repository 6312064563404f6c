"""The ``posepipe`` command line: flags generated from the job settings (run and submit alike), one
error style, documented exit codes, secrets kept out of what is printed."""
from __future__ import annotations

import socket

import pytest
import yaml

from pipeline.cli import EXIT_CODES, EXIT_INCOMPLETE, EXIT_OK, build_parser, fail, job_exit_status, main
from pipeline.job.progress import JobSummary
from pipeline.job.spec import file_settings, flag_name, load_spec, overrides_from_args, settings

NEW_FLAGS = ["--backend", "torch", "--track", "min_similarity=0.5", "--track", "matcher=greedy",
             "--target-fps", "2.5", "--start-s", "1", "--end-s", "9.5", "--compact", "--max-pixels", "1000",
             "--max-aspect", "3", "--no-tracking", "--parse", "peak_threshold=0.3", "--scales", "1", "1.5",
             "--frames-per-shard", "5"]


def _spec_file(tmp_path, **settings_):
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump({"input": [str(tmp_path)], "output": str(tmp_path / "out"), **settings_}))
    return path


def test_help_lists_every_exit_code(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "exit status:" in out and "posepipe <command>: <message>" in out
    for code, text in EXIT_CODES.items():
        assert f"  {code}  {text.split()[0]}" in out


@pytest.mark.parametrize("command", ["run", "submit"])
def test_run_and_submit_take_every_setting_as_a_flag(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = capsys.readouterr().out
    expected = [k for k in settings() if not (command == "submit" and k == "ray_address")]
    missing = [k for k in expected if flag_name(k) not in out]
    assert not missing
    assert (flag_name("ray_address") in out) == (command == "run")


@pytest.mark.parametrize("command", ["run", "submit"])
def test_flags_override_the_file_the_same_way(tmp_path, command):
    path = _spec_file(tmp_path, parse={"max_people": 3}, track={"min_poses": 2}, frames_per_shard=64)
    args = build_parser().parse_args([command, "--config", str(path), *NEW_FLAGS])
    spec = load_spec(path, overrides_from_args(args, file_settings(path)))
    assert (spec.backend, spec.target_fps, spec.start_s, spec.end_s, spec.compact) == ("torch", 2.5, 1.0, 9.5, True)
    assert (spec.max_pixels, spec.max_aspect, spec.tracking, spec.scales) == (1000, 3.0, False, (1.0, 1.5))
    assert spec.frames_per_shard == 5
    assert spec.parse == {"max_people": 3, "peak_threshold": 0.3}                  # merged with the file's
    assert spec.track == {"min_poses": 2, "min_similarity": 0.5, "matcher": "greedy"}
    untouched = build_parser().parse_args([command, "--config", str(path)])
    assert load_spec(path, overrides_from_args(untouched, file_settings(path))) == load_spec(path)


def test_run_reports_a_bad_spec_in_one_line_with_url_passwords_masked(tmp_path, capsys):
    path = _spec_file(tmp_path, model="https://me:PLANTED-PASSWORD@models.example/net")
    assert main(["run", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("posepipe run: invalid job spec: ") and "key 'model'" in err
    assert "PLANTED-PASSWORD" not in err and "https://me:***@models.example/net" in err
    with pytest.raises(SystemExit) as usage:
        main(["run", "--config", str(path), "--storage-option", "secret:PLANTED-IN-FLAG"])
    assert usage.value.code == 2
    err = capsys.readouterr().err
    assert "expected NAME=VALUE" in err and "PLANTED-IN-FLAG" not in err


def test_fail_masks_known_secret_values(capsys):
    assert fail("submit", "boom: key AKIA-PLANTED-9 refused", 2, {"AKIA-PLANTED-9"}) == 2
    assert capsys.readouterr().err == "posepipe submit: boom: key *** refused\n"


def test_cluster_commands_share_the_error_style_and_codes(tmp_path, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        address = f"http://127.0.0.1:{s.getsockname()[1]}"  # nothing listens once the socket is closed
    assert main(["status", "some-job", "--address", address]) == 2
    assert capsys.readouterr().err.startswith(f"posepipe status: could not reach the Ray Jobs API at {address}")
    assert main(["submit", "--address", address]) == 2
    assert capsys.readouterr().err.startswith("posepipe submit: no job spec: give --config")
    a, b = _spec_file(tmp_path), tmp_path / "other.yaml"
    assert main(["submit", str(b), "--config", str(a), "--address", address]) == 2
    assert "two job specs given" in capsys.readouterr().err
    spec = _spec_file(tmp_path, input=["s3://bucket/in/"], output="s3://bucket/out")
    assert main(["submit", "--config", str(spec), "--address", address,
                 "--env", "AWS_SECRET_ACCESS_KEY=PLANTED-ENV-SECRET"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("posepipe submit: --env AWS_SECRET_ACCESS_KEY: credentials are not sent")
    assert "PLANTED-ENV-SECRET" not in err


def test_job_exit_status_from_the_summary():
    assert job_exit_status(JobSummary(output="o", shards_done=3)) == EXIT_OK
    assert job_exit_status(JobSummary(output="o", shards_failed=1)) == EXIT_INCOMPLETE
    assert job_exit_status(JobSummary(output="o", pending=2)) == EXIT_INCOMPLETE
