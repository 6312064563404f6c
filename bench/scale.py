"""Bookkeeping cost of the job layer at scale, with the stand-in network (pipeline.testing.RenderedRunner):
files and folders per 1,000 inputs, driver ms per shard, driver max RSS, re-run time of a finished
job, time to read all poses and one source's poses. Each size runs in its own process (clean RSS).

    python bench/scale.py --sizes 1000 10000 [--images-per-shard 256]   -> bench/results/scale.json
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "scale.json"


def one_size(n: int, images_per_shard: int, work: Path) -> dict:
    """Run a job over ``n`` tiny synthetic images, re-run it, read it back; returns the figures."""
    import pipeline
    from pipeline import testing
    from pipeline.job import build_spec, run_job

    folder, out = work / "in", work / "out"
    folder.mkdir(parents=True)
    for i in range(n):
        testing.write_image(folder / f"img{i:06d}.png", i % 60000, size=(64, 48))
    spec = build_spec({"input": [str(folder)], "output": str(out), "images_per_shard": images_per_shard,
                       "progress": False, "num_cpus": 2})
    t0 = time.perf_counter()
    first = run_job(spec, runner_factory=testing.RenderedRunner, model_id="standin@0")
    t_first = time.perf_counter() - t0
    t0 = time.perf_counter()
    again = run_job(spec, runner_factory=testing.RenderedRunner, model_id="standin@0")
    t_rerun = time.perf_counter() - t0
    files = sum(len(f) for _, _, f in os.walk(out))
    folders = sum(len(d) for _, d, _ in os.walk(out))
    t0 = time.perf_counter()
    poses = pipeline.read_poses(str(out))
    t_all = time.perf_counter() - t0
    uri = str(folder / f"img{n // 2:06d}.png")
    t0 = time.perf_counter()
    one = pipeline.read_poses(str(out), filters=[("source_uri", "=", uri)])
    t_one = time.perf_counter() - t0
    shards = first.shards_total
    return {"inputs": n, "shards": shards, "frames": first.frames, "poses": len(poses), "one_source_rows": len(one),
            "files": files, "folders": folders, "files_per_1000_inputs": 1000 * files / n,
            "files_per_shard": files / shards, "first_run_s": t_first, "driver_ms_per_shard": 1000 * t_first / shards,
            "rerun_s": t_rerun, "rerun_skipped": again.shards_skipped, "read_all_poses_s": t_all,
            "read_one_source_s": t_one,
            "driver_max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--images-per-shard", type=int, default=256)
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        work = Path(tempfile.mkdtemp(prefix="posepipe-scale-"))
        try:
            print(json.dumps(one_size(args.one, args.images_per_shard, work)))
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return 0
    rows = []
    for n in args.sizes:
        proc = subprocess.run([sys.executable, __file__, "--one", str(n), "--images-per-shard",
                               str(args.images_per_shard)], capture_output=True, text=True)
        if proc.returncode:
            print(proc.stdout[-2000:], proc.stderr[-4000:], file=sys.stderr)
            return 1
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    cols = ["inputs", "shards", "files_per_shard", "files_per_1000_inputs", "driver_ms_per_shard",
            "driver_max_rss_mb", "rerun_s", "read_all_poses_s", "read_one_source_s"]
    print(" | ".join(cols))
    for r in rows:
        print(" | ".join(f"{r[c]:.3g}" if isinstance(r[c], float) else str(r[c]) for c in cols))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"images_per_shard": args.images_per_shard, "runs": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
