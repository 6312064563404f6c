"""Video decode throughput: frames/s and frames per CPU-second, threaded vs one thread, and the
cost of starting a range mid-GOP (seek to the keyframe before it, decode forward).

Baseline (ratio 1.0): plain sequential PyAV decode on one thread, to BGR, of the whole video.
Writes bench/results/video_decode.json and prints a table.

    python bench/video_decode.py [--media DIR] [--repeat 3]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import av

from pipeline.video import FrameRange, iter_frames, plan_shards, probe

REPO = Path(__file__).resolve().parents[1]


def _timed(fn, repeat: int) -> tuple[float, float, int]:
    """Best-of-`repeat` (wall seconds, CPU seconds of this process, result of fn)."""
    best = None
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        n = fn()
        w, c = time.perf_counter() - w0, time.process_time() - c0
        if best is None or w < best[0]:
            best = (w, c, n)
    return best


def _plain_decode(path: str) -> int:
    with av.open(path) as c:
        s = c.streams.video[0]
        s.codec_context.thread_count = 1
        return sum(1 for f in c.decode(s) if f.to_ndarray(format="bgr24") is not None)


def bench_video(path: str, repeat: int) -> list[dict]:
    info = probe(path)
    n = info.num_frames
    rows = []

    def add(case: str, frames: int, wall: float, cpu: float, base_fps: float | None = None):
        fps = frames / wall
        rows.append({"video": Path(path).name, "case": case, "frames": frames,
                     "wall_s": round(wall, 4), "cpu_s": round(cpu, 4),
                     "frames_per_s": round(fps, 1), "frames_per_cpu_s": round(frames / max(cpu, 1e-9), 1),
                     "ratio_vs_baseline": None if base_fps is None else round(fps / base_fps, 3)})
        return fps

    w, c, k = _timed(lambda: _plain_decode(path), repeat)
    base = add("baseline: plain PyAV decode, 1 thread", k, w, c)
    base = rows[-1]["frames_per_s"]
    w, c, k = _timed(lambda: sum(1 for _ in iter_frames(path, FrameRange(0, n), info, threads=False)), repeat)
    add("iter_frames, 1 thread", k, w, c, base)
    w, c, k = _timed(lambda: sum(1 for _ in iter_frames(path, FrameRange(0, n), info, threads=True)), repeat)
    add("iter_frames, threads=AUTO", k, w, c, base)
    w, c, k = _timed(lambda: probe(path).num_frames, repeat)
    rows.append({"video": Path(path).name, "case": "probe (demux all packets + decode 1 frame)",
                 "frames": k, "wall_s": round(w, 4), "cpu_s": round(c, 4)})
    shards = plan_shards(info, frames_per_shard=max(1, n // 8))
    w, c, k = _timed(lambda: sum(1 for s in shards for _ in iter_frames(path, s, info, threads=False)), repeat)
    add(f"all {len(shards)} shards one by one, 1 thread", k, w, c, base)
    if len(info.keyframes) > 1:
        kf = info.keyframes[len(info.keyframes) // 2]
        gop = info.keyframes[len(info.keyframes) // 2 + 1] - kf
        for label, start in (("at keyframe", kf), ("last frame of GOP", kf + gop - 1)):
            w, c, k = _timed(lambda s=start: sum(1 for _ in iter_frames(
                path, FrameRange(s, s + 1), info, threads=False)), max(repeat, 5))
            rows.append({"video": Path(path).name, "case": f"seek + 1 frame, {label} (GOP {gop})",
                         "frames": k, "wall_s": round(w, 4), "cpu_s": round(c, 4),
                         "seek_cost_in_frames": round(w / (1 / base), 1)})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--media", default=str(REPO.parent / "shared" / "media" / "video"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--output", default=str(REPO / "bench" / "results" / "video_decode.json"))
    args = ap.parse_args()
    rows = []
    for path in sorted(Path(args.media).glob("*.mp4")):
        rows += bench_video(str(path), args.repeat)
    print(f"{'video':34} {'case':46} {'frames':>6} {'wall s':>8} {'fr/s':>8} {'fr/cpu-s':>9} {'ratio':>6}")
    for r in rows:
        extra = r.get("ratio_vs_baseline")
        extra = f"{extra:6.2f}" if extra is not None else (
            f"  ~{r['seek_cost_in_frames']} frames" if "seek_cost_in_frames" in r else "")
        print(f"{r['video'][:34]:34} {r['case'][:46]:46} {r['frames']:>6} {r['wall_s']:>8.3f} "
              f"{r.get('frames_per_s', 0):>8.1f} {r.get('frames_per_cpu_s', 0):>9.1f} {extra}")
    meta = {"machine": platform.platform(), "cpus": os.cpu_count(), "pyav": av.__version__,
            "ffmpeg_libavcodec": ".".join(map(str, av.library_versions["libavcodec"])),
            "note": "best of --repeat runs; shared machine, other processes running"}
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
