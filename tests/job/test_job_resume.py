"""Kill a real `posepipe run` process with SIGKILL midway (on Ray), or interrupt it with Ctrl-C
(inline), run it again: finished shards are skipped, every frame is written exactly once and no
pose row is duplicated or lost."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pipeline


def _descendants(pid: int) -> list[int]:
    """``pid``'s descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    out, todo = [], list(children.get(pid, []))
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def _running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


#: The six smallest sample photos (one shard each).
IMAGES = ("p1.jpg", "valid_person1.jpg", "p3.jpg", "p2.jpg", "apink3.jpg", "COCO_val2014_000000000357.jpg")


def _cmd(media_dir: Path, out: Path, progress: bool = False, executor: str = "ray") -> list[str]:
    return [sys.executable, "-m", "pipeline.cli", "run", "--input", *(str(media_dir / "images" / n) for n in IMAGES),
            "--output", str(out), "--images-per-shard", "1", "--batch-size", "1", "--num-cpus", "2",
            "--executor", executor, "--progress" if progress else "--no-progress"]


def _done_shards(out: Path) -> dict[str, object]:
    """{shard_id: commit time} of the shards the output's shard_log lists as done."""
    from pipeline.job.sink import DeltaSink

    try:
        log = DeltaSink(str(out)).shard_log(["shard_id", "status", "time_utc"]).to_pylist()
    except Exception:  # noqa: BLE001 - the log may not exist yet
        return {}
    return {r["shard_id"]: r["time_utc"] for r in log if r["status"] == "done"}


def test_sigkill_then_resume(media_dir, tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    images = sorted(IMAGES)
    log = open(tmp_path / "run1.log", "wb")
    proc = subprocess.Popen(_cmd(media_dir, out), stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if len(_done_shards(out)) >= 2:
                break
            time.sleep(0.2)
        assert proc.poll() is None, f"run ended before it could be killed:\n{(tmp_path / 'run1.log').read_text()}"
        tree = _descendants(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        for pid in _descendants(proc.pid) if proc.poll() is None else []:
            os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
    time.sleep(1.0)
    ray_tree = [pid for pid in tree if _running(pid)]  # what the killed driver's Ray left behind
    done_before = _done_shards(out)
    assert 2 <= len(done_before) < len(images), f"{len(done_before)} of {len(images)} shards done at the kill"

    second = subprocess.run(_cmd(media_dir, out, progress=True), capture_output=True, text=True, env=env,
                            timeout=300)
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"({len(done_before)} already done" in second.stdout, second.stdout
    assert f"[posepipe] shards {len(images)}/{len(images)} |" in second.stderr, second.stderr  # progress line
    assert str(out / "_manifest.json") in second.stdout and "people" in second.stdout  # the closing report
    left = [pid for pid in ray_tree if _running(pid)]
    assert not left, f"the re-run left Ray processes of the killed driver running: {left}"  # reap_orphans
    done_after = _done_shards(out)
    assert len(done_after) == len(images)
    for shard_id, committed in done_before.items():  # finished shards were not redone
        assert done_after[shard_id] == committed

    manifest = json.loads((out / "_manifest.json").read_text())
    assert manifest["summary"]["status"] == "complete" and manifest["summary"]["shards_skipped"] == len(done_before)
    frames = pipeline.read_frames(out)
    assert sorted(frames.source_uri.map(os.path.basename)) == images  # each frame exactly once
    poses = pipeline.read_poses(out)
    assert not poses.duplicated(["source_id", "frame_index", "person_index"]).any()
    counts = poses.groupby("source_uri").size()
    for row in frames.itertuples():
        assert counts.get(row.source_uri, 0) == row.num_people, row.source_uri
    assert len(poses) == manifest["summary"]["people"] == frames.num_people.sum()


def test_ctrl_c_then_resume(media_dir, tmp_path):
    """SIGINT (Ctrl-C) to an inline run: exit status 130 with one line saying how to go on, the
    shards committed so far stay, and the same command finishes the job exactly."""
    import signal as _signal

    out = tmp_path / "out"
    proc = subprocess.Popen(_cmd(media_dir, out, executor="inline"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=lambda: _signal.signal(_signal.SIGINT, _signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None and not _done_shards(out):
            time.sleep(0.05)
        assert proc.poll() is None, "run ended before it could be interrupted"
        proc.send_signal(_signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stdout + stderr
    assert "posepipe run: interrupted: the shards committed so far stay" in stderr and "Traceback" not in stderr
    done_before = _done_shards(out)
    assert 1 <= len(done_before) < len(IMAGES)
    second = subprocess.run(_cmd(media_dir, out, executor="inline"), capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"({len(done_before)} already done" in second.stdout, second.stdout
    frames = pipeline.read_frames(out)
    assert sorted(frames.source_uri.map(os.path.basename)) == sorted(IMAGES)  # each frame exactly once
    poses = pipeline.read_poses(out)
    assert not poses.duplicated(["source_id", "frame_index", "person_index"]).any()
    assert len(poses) == frames.num_people.sum()
