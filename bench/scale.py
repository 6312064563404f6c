"""Bookkeeping cost of the job layer at scale, with the stand-in network (pipeline.testing.RenderedRunner):
files and folders per 1,000 inputs, driver ms per shard, driver max RSS (of the two job runs; the
process's peak after reading every pose back is reported apart), re-run time of a finished job,
time to read all poses and one source's poses; on local disk and, input and output, on a moto S3
server (its own process). Each size runs in its own process (clean RSS).

    python bench/scale.py --sizes 1000 10000 100000 --s3-sizes 1000 10000   -> bench/results/scale.json
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


def _moto_server() -> tuple[subprocess.Popen, str]:
    """A moto S3 server in its own process (so its memory is not the driver's) on 127.0.0.1."""
    import socket
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(url, timeout=1)
            return proc, url
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the moto S3 server did not start")


def one_size(n: int, images_per_shard: int, work: Path, s3_url: str | None = None) -> dict:
    """Run a job over ``n`` tiny synthetic images (on local disk, or uploaded to the S3 server at
    ``s3_url`` with the output there too), re-run it, read it back; returns the figures."""
    import pipeline
    from pipeline import testing
    from pipeline.job import build_spec, run_job

    folder, out, options = work / "in", str(work / "out"), {}
    folder.mkdir(parents=True)
    for i in range(n):
        testing.write_image(folder / f"img{i:06d}.png", i % 60000, size=(64, 48))
    inputs = str(folder)
    if s3_url is not None:
        import s3fs

        options = {"key": "bench", "secret": "bench", "endpoint_url": s3_url}
        fs = s3fs.S3FileSystem(**options)
        fs.mkdir("bench")
        fs.put(str(folder) + "/", "bench/in/", recursive=True)
        inputs, out = "s3://bench/in/", "s3://bench/out"
    spec = build_spec({"input": [inputs], "output": out, "images_per_shard": images_per_shard,
                       "progress": False, "num_cpus": 2, "storage_options": options})
    t0 = time.perf_counter()
    first = run_job(spec, runner_factory=testing.RenderedRunner, model_id="standin@0")
    t_first = time.perf_counter() - t0
    t0 = time.perf_counter()
    again = run_job(spec, runner_factory=testing.RenderedRunner, model_id="standin@0")
    t_rerun = time.perf_counter() - t0
    job_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the driver's peak, before reading back
    if s3_url is None:
        files = sum(len(f) for _, _, f in os.walk(out))
        folders = sum(len(d) for _, d, _ in os.walk(out))
    else:
        found = fs.find("bench/out", withdirs=True, detail=True)
        files = sum(1 for i in found.values() if i["type"] == "file")
        folders = len({os.path.dirname(k) for k in found}) - 1
    t0 = time.perf_counter()
    poses = pipeline.read_poses(out, storage_options=options)
    t_all = time.perf_counter() - t0
    uri = poses.source_uri.iloc[len(poses) // 2]  # a source with rows
    t0 = time.perf_counter()
    one = pipeline.read_poses(out, filters=[("source_uri", "=", uri)], storage_options=options)
    t_one = time.perf_counter() - t0
    if len(one) != int((poses.source_uri == uri).sum()) or not len(one):
        raise AssertionError(f"reading {uri} alone gave {len(one)} rows, the whole table holds "
                             f"{int((poses.source_uri == uri).sum())}")
    shards = first.shards_total
    return {"inputs": n, "storage": "s3 (moto)" if s3_url else "local", "shards": shards, "frames": first.frames,
            "poses": len(poses), "one_source_rows": len(one),
            "files": files, "folders": folders, "files_per_1000_inputs": 1000 * files / n,
            "files_per_shard": files / shards, "first_run_s": t_first, "driver_ms_per_shard": 1000 * t_first / shards,
            "rerun_s": t_rerun, "rerun_skipped": again.shards_skipped, "read_all_poses_s": t_all,
            "read_one_source_s": t_one, "driver_max_rss_mb": job_rss_mb,
            "max_rss_after_reading_all_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--s3-sizes", type=int, nargs="*", default=[1000, 10000],
                    help="sizes run again with input and output on a moto S3 server")
    ap.add_argument("--images-per-shard", type=int, default=256)
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--s3-url", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        work = Path(tempfile.mkdtemp(prefix="posepipe-scale-"))
        try:
            print(json.dumps(one_size(args.one, args.images_per_shard, work, args.s3_url)))
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return 0
    rows = []
    for n, on_s3 in [(n, False) for n in args.sizes] + [(n, True) for n in args.s3_sizes]:
        server, extra = (_moto_server() if on_s3 else (None, None))
        try:
            proc = subprocess.run([sys.executable, __file__, "--one", str(n), "--images-per-shard",
                                   str(args.images_per_shard)] + (["--s3-url", extra] if extra else []),
                                  capture_output=True, text=True)
        finally:
            if server is not None:
                server.kill()
        if proc.returncode:
            print(proc.stdout[-2000:], proc.stderr[-4000:], file=sys.stderr)
            return 1
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    cols = ["inputs", "storage", "shards", "files_per_shard", "files_per_1000_inputs", "driver_ms_per_shard",
            "driver_max_rss_mb", "rerun_s", "read_all_poses_s", "read_one_source_s"]
    print(" | ".join(cols))
    for r in rows:
        print(" | ".join(f"{r[c]:.3g}" if isinstance(r[c], float) else str(r[c]) for c in cols))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"images_per_shard": args.images_per_shard, "runs": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
