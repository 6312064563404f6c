"""End-to-end throughput of `posepipe run` (local Ray) vs a plain single-process loop, same files, same run.

Inputs: the sample photos, the 5-frame demo video and every --frame-step-th frame of the 1394-frame
video in ../shared/media. Both sides use the same network (default omz-lightweight, CPU, fp32), the
same batch size and the same parser settings. Reports frames/s, the ratio pipeline/loop, and the
share of worker time spent in decode(+preprocess), network, parsing (candidates + assembly) and
writing. Prints a table and writes bench/results/pipeline_throughput.json.

    python bench/pipeline_throughput.py [--frame-step 10] [--num-cpus N] [--repeats 2]

Loop and pipeline alternate --repeats times and the best run of each is reported (the machine may
be shared); the plain loop gets as many torch threads as one network actor of the pipeline.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("POSEPIPE_SHARED_DIR", REPO.parent / "shared"))
os.environ.setdefault("POSEPIPE_MODEL_DIR", str(SHARED / "models"))
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def inputs() -> tuple[list[Path], list[Path]]:
    media = SHARED / "media"
    images = sorted((media / "images").iterdir())
    videos = [media / "video" / "mmpose-demo-5frames.mp4", media / "video" / "one-by-one-person-detection.mp4"]
    return images, videos


def plain_loop(images, videos, model: str, batch_size: int, frame_step: int, threads: int) -> dict:
    """Decode -> network -> parse, one process, no Ray, ``threads`` torch threads; returns frames,
    people and seconds per stage."""
    import torch

    from pipeline.models.inference import PoseNetRunner
    from pipeline.parsing import ParseConfig, assemble, find_candidates
    from pipeline.video import iter_frames, plan_shards, probe

    torch.set_num_threads(threads)
    start = time.perf_counter()  # model loading counts, as the pipeline's actor start-up does
    runner = PoseNetRunner(model, device="cpu", batch_size=batch_size)
    cfg = ParseConfig()
    t = {"decode": 0.0, "network": 0.0, "parse": 0.0}
    frames = people = 0

    def batches():
        batch = []
        for path in images:
            t0 = time.perf_counter()
            batch.append(cv2.imread(str(path), cv2.IMREAD_COLOR))
            t["decode"] += time.perf_counter() - t0
            if len(batch) == batch_size:
                yield batch
                batch = []
        for path in videos:
            t0 = time.perf_counter()
            info = probe(str(path))
            (rng,) = plan_shards(info, frames_per_shard=info.num_frames, every_k=frame_step)
            it = iter_frames(str(path), rng, info)
            t["decode"] += time.perf_counter() - t0
            while True:
                t0 = time.perf_counter()
                frame = next(it, None)
                t["decode"] += time.perf_counter() - t0
                if frame is None:
                    break
                batch.append(frame.image)
                if len(batch) == batch_size:
                    yield batch
                    batch = []
        if batch:
            yield batch

    for batch in batches():
        t0 = time.perf_counter()
        fields = runner(batch)
        t1 = time.perf_counter()
        for f in fields:
            people += len(assemble(find_candidates(f, cfg), cfg))
        t["parse"] += time.perf_counter() - t1
        t["network"] += t1 - t0
        frames += len(batch)
    wall = time.perf_counter() - start
    return {"frames": frames, "people": people, "wall_s": wall, "frames_per_s": frames / wall, "stage_seconds": t}


def pipeline_run(images, videos, model: str, batch_size: int, frame_step: int, num_cpus: int,
                 images_per_shard: int, frames_per_shard: int) -> dict:
    """`posepipe run` through pipeline.job.run_job on an already started local Ray (Ray start-up not
    timed; listing, probing, actor start-up with model loading and writing are)."""
    import ray

    from pipeline.job import build_spec, run_job

    out = tempfile.mkdtemp(prefix="posepipe-bench-")
    try:
        t0 = time.perf_counter()
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)
        ray_start = time.perf_counter() - t0
        spec = build_spec({"input": [str(p) for p in images + videos], "output": out, "model": model,
                           "batch_size": batch_size, "frame_step": frame_step, "images_per_shard": images_per_shard,
                           "frames_per_shard": frames_per_shard, "tracking": False, "progress": False})
        s = run_job(spec)
        ray.shutdown()
        return {"frames": s.frames, "people": s.people, "wall_s": s.elapsed_s, "frames_per_s": s.frames / s.elapsed_s,
                "ray_start_s": ray_start, "shards": s.shards_total, "errors": s.errors,
                "stage_seconds": s.stage_seconds}
    finally:
        shutil.rmtree(out, ignore_errors=True)


def shares(stage_seconds: dict) -> dict:
    total = sum(stage_seconds.values()) or 1.0
    return {k: v / total for k, v in stage_seconds.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="omz-lightweight")
    ap.add_argument("--frame-step", type=int, default=10, help="every n-th frame of the long video")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--num-cpus", type=int, default=os.cpu_count())
    ap.add_argument("--images-per-shard", type=int, default=8)
    ap.add_argument("--frames-per-shard", type=int, default=32)
    ap.add_argument("--loop-threads", type=int, default=None,
                    help="torch threads of the plain loop (default: the CPUs one network actor gets)")
    ap.add_argument("--repeats", type=int, default=2,
                    help="alternate loop and pipeline this many times; the best of each is reported")
    ap.add_argument("--output", default=str(REPO / "bench" / "results" / "pipeline_throughput.json"))
    args = ap.parse_args(argv)

    images, videos = inputs()
    if args.loop_threads is None:  # same math threads as one network actor of the pipeline
        args.loop_threads = 2 if args.num_cpus >= 4 else 1
    loops, pipes = [], []
    for _ in range(args.repeats):  # alternate, so load changes on a shared machine hit both sides
        loops.append(plain_loop(images, videos, args.model, args.batch_size, args.frame_step, args.loop_threads))
        pipes.append(pipeline_run(images, videos, args.model, args.batch_size, args.frame_step, args.num_cpus,
                                  args.images_per_shard, args.frames_per_shard))
    loop = max(loops, key=lambda r: r["frames_per_s"])
    pipe = max(pipes, key=lambda r: r["frames_per_s"])
    result = {
        "what": "posepipe run (local Ray, CPU) vs single-process loop over the same frames, same run",
        "machine": {"cpus": os.cpu_count(), "ray_num_cpus": args.num_cpus, "platform": platform.platform(),
                    "python": sys.version.split()[0], "gpu": "none (GPU throughput unmeasured)"},
        "settings": {k: getattr(args, k) for k in ("model", "frame_step", "batch_size", "images_per_shard",
                                                   "frames_per_shard", "loop_threads")},
        "inputs": {"images": len(images), "videos": [p.name for p in videos]},
        "loop": {**loop, "stage_share": shares(loop["stage_seconds"])},
        "pipeline": {**pipe, "stage_share": shares(pipe["stage_seconds"])},
        "speedup_pipeline_vs_loop": pipe["frames_per_s"] / loop["frames_per_s"],
        "all_frames_per_s": {"loop": [r["frames_per_s"] for r in loops], "pipeline": [r["frames_per_s"] for r in pipes]},
        "load_average_after": os.getloadavg(),
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=1))

    rows = [("single-process loop", loop), ("posepipe run (Ray)", pipe)]
    print(f"{'':22} {'frames':>7} {'people':>7} {'wall s':>8} {'frames/s':>9} {'decode':>7} {'network':>8} "
          f"{'parse':>6} {'write':>6}")
    for name, r in rows:
        sh = shares(r["stage_seconds"])
        print(f"{name:22} {r['frames']:7d} {r['people']:7d} {r['wall_s']:8.1f} {r['frames_per_s']:9.2f} "
              f"{sh.get('decode', 0):7.1%} {sh.get('network', 0):8.1%} {sh.get('parse', 0):6.1%} "
              f"{sh.get('write', 0):6.1%}")
    print(f"pipeline / loop frames/s: {result['speedup_pipeline_vs_loop']:.2f}x  "
          f"(Ray start-up {pipe['ray_start_s']:.1f} s not counted; {os.cpu_count()} CPUs, no GPU)")
    print(f"every run, frames/s: loop {[round(r['frames_per_s'], 2) for r in loops]}, "
          f"pipeline {[round(r['frames_per_s'], 2) for r in pipes]}; load average {os.getloadavg()[0]:.1f}")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
