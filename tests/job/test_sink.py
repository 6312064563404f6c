"""Exactly-once tables (pipeline.job.sink): whatever happens to a job -- re-runs with other shard
sizes, touched / changed / added / removed inputs, two drivers at once, a transient failure, a
lost data file, a full disk -- every (source, frame) is in the tables exactly once, with the rows
its input must give (checked against the known skeletons of the stand-in network)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

import pipeline
from pipeline import testing as standin
from pipeline.job import build_spec, run_job
from pipeline.job.maintenance import verify
from pipeline.job.sink import DeltaSink, replace_predicate


def _spec(folder, out, **kw):
    return build_spec({"input": [str(folder)], "output": str(out), "progress": False, "images_per_shard": 3, **kw})


def _run(folder, out, **kw):
    factory = kw.pop("runner_factory", standin.RenderedRunner)
    return run_job(_spec(folder, out, **kw), runner_factory=factory, model_id="standin@0")


def _images(folder: Path, ids) -> dict[str, np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    return {f"img{i:02d}.png": standin.write_image(folder / f"img{i:02d}.png", i, size=(320 + 16 * (i % 3), 240))
            for i in ids}


assert_exact = standin.assert_exact_tables


def test_replace_predicate_quotes_and_bounds():
    assert replace_predicate("source_uri", ["a'b"]) == "source_uri = 'a''b'"
    assert replace_predicate("input", ["x", "y"], (None, 64)) == "input IN ('x', 'y') AND frame_index < 64"
    assert replace_predicate("source_uri", ["v"], (64, 128), "frame_start") == \
        "source_uri = 'v' AND frame_start >= 64 AND frame_start < 128"


def test_other_shard_sizes_and_changed_inputs(job_ray, tmp_path):
    folder, out = tmp_path / "in", tmp_path / "out"
    truth = _images(folder, range(1, 8))
    for size in (3, 2, 5):  # the same inputs re-run with other shard sizes: nothing is redone
        s = _run(folder, out, images_per_shard=size)
        assert s.status == "complete" and s.frames == 7 and s.shards_done == (3 if size == 3 else 0), s
        assert_exact(out, truth)
    again = _run(folder, out, images_per_shard=5)
    assert again.shards_skipped == again.shards_total and again.shards_done == 0
    os.utime(folder / "img03.png", (1, 1))  # touched: content unchanged, new mtime
    _run(folder, out, images_per_shard=5)
    assert_exact(out, truth)
    truth["img04.png"] = standin.write_image(folder / "img04.png", 11)  # changed content
    truth.update(_images(folder, [9]))  # added
    (folder / "img02.png").unlink()  # removed: its rows go
    del truth["img02.png"]
    s = _run(folder, out, images_per_shard=5)
    assert s.pruned_sources == 1 and s.status == "complete"
    assert_exact(out, truth)


def test_transient_failure_is_pending_then_retried(job_ray, tmp_path):
    folder, out = tmp_path / "in", tmp_path / "out"
    truth = _images(folder, range(1, 5))
    back = tmp_path / "storage-is-back"
    factory = lambda **kw: standin.RenderedRunner(transient=(str(back), 3), **kw)  # noqa: E731
    s = _run(folder, out, runner_factory=factory)
    assert s.status == "incomplete" and s.pending == 1
    errors = pipeline.read_errors(out)
    assert list(errors.input.map(os.path.basename)) == ["img03.png"] and errors.retryable.item()
    assert "ConnectionResetError" in errors.error_type.item() or "reset" in errors.message.item()
    back.write_text("ok")
    s = _run(folder, out, runner_factory=factory)
    assert s.status == "complete" and s.pending == 0 and s.shards_done == 1  # only the pending shard again
    assert pipeline.read_errors(out).empty
    assert_exact(out, truth)


def test_verify_finds_a_lost_file_and_the_rerun_restores_it(job_ray, tmp_path):
    folder, out = tmp_path / "in", tmp_path / "out"
    truth = _images(folder, range(1, 8))
    _run(folder, out)
    sink = DeltaSink(str(out))
    lost = sink.table("poses").file_uris()[0]
    held = set(pq.read_table(lost, columns=["shard_id"]).column("shard_id").to_pylist())  # group commit: 1+ shards
    os.remove(lost)
    problems = verify(sink)
    assert len(problems) == 1 and os.path.basename(lost) in problems[0]
    verify(sink, repair=True)
    assert not held & DeltaSink(str(out)).done_shards()
    s = _run(folder, out)
    assert s.shards_done >= len(held) and s.shards_done + s.shards_skipped == 3
    assert_exact(out, truth)


def test_two_drivers_at_once(tmp_path):
    """Two driver processes (each its own in-process Ray) on one output: no duplicates, no loss, and
    no shard computed twice."""
    folder, out = tmp_path / "in", tmp_path / "out"
    truth = _images(folder, range(1, 10))
    script = textwrap.dedent(f"""
        from pipeline import testing
        from pipeline.job import build_spec, run_job
        spec = build_spec({{"input": [{str(folder)!r}], "output": {str(out)!r}, "progress": False,
                           "images_per_shard": 2, "num_cpus": 2, "pool_size": 1, "executor": "ray"}})
        s = run_job(spec, runner_factory=testing.RenderedRunner, model_id="standin@0")
        print("DONE", s.shards_done, s.shards_skipped, s.shards_by_other_drivers, s.status)
    """)
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              env=env, text=True) for _ in range(2)]
    try:
        logs = [p.communicate(timeout=400)[0] for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert all(p.returncode == 0 for p in procs), logs
    done = [[int(v) for v in log.split("DONE")[1].split()[:3]] for log in logs]
    # Shard leases: each of the 5 shards computed by exactly one driver; the other skipped it or saw
    # it committed (the leases folder is empty again).
    assert sum(d[0] for d in done) == 5 and all(sum(d) == 5 for d in done), logs
    assert not any((out / "_posepipe" / "leases").iterdir())
    assert_exact(out, truth)


def test_disk_full_ends_cleanly(job_ray, tmp_path):
    """A full disk fails the shards concerned, ends with a clear summary, and the re-run with space
    finishes the job exactly."""
    folder, mount = tmp_path / "in", tmp_path / "small-disk"
    truth = _images(folder, range(1, 8))
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mount)]).returncode:
        pytest.skip("needs root to mount a small tmpfs")
    try:
        out = mount / "out"
        # tables created while there is room, then nearly all of it taken
        sink = DeltaSink(str(out))
        sink.open("standin@0", _spec(folder, out).config_id())
        filler = mount / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError:  # the disk is full
            pass
        finally:
            os.close(fd)
        s = _run(folder, out, shard_retries=0)  # must not raise
        assert s.status == "incomplete" and s.pending > 0
        assert s.unrecorded_errors > 0 and s.last_write_error
        pipeline.read_frames(out)  # the log is consistent: a reader still gets a snapshot
        filler.unlink()
        s = _run(folder, out)
        assert s.status == "complete"
        assert_exact(out, truth)
    finally:
        subprocess.run(["umount", "-l", str(mount)])
    shutil.rmtree(folder)
