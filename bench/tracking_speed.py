"""Tracking and smoothing cost per frame by people per frame, with the tracks' quality on the same
synthetic crowds (IDF1 / ID switches from motmetrics, smoothing error against the noiseless truth).

    python bench/tracking_speed.py [--quick]

Crowds: N people per frame walking straight at 30-150 px/s in random directions through a
1920x1080 view (they cross each other freely; no occlusion model), 2 px keypoint noise, 5% of
poses and 10% of joints missed, 10 s at 25 fps, from pipeline.testing's walkers. Times are CPU seconds of this process
(time.process_time) with BLAS pinned to one thread, i.e. one core, medians over repeats, divided
by the number of frames. Baseline, measured in the same run: a plain frame-to-frame tracker (the
same code with motion prediction, confirmation, re-linking and smoothing off). Prints a table and
writes bench/results/tracking_speed.json.
"""
from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
from dataclasses import asdict  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from pipeline.testing import cpu_ms, rows_from, walker  # noqa: E402
from pipeline.video import TrackConfig, track_video  # noqa: E402
from pipeline.video.track_quality import identity_scores  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PEOPLE = (1, 5, 10, 20, 50)
FPS, SECONDS, VIEW = 25.0, 10.0, (1920, 1080)
POSE_MISS, JOINT_MISS = 0.05, 0.1   # share of poses the detector misses, of joints it misses in a found pose
CASES = {
    "baseline: frame-to-frame OKS + Hungarian": TrackConfig(predict_motion=False, relink_s=0.0, min_poses=1,
                                                             min_score=0.0, smoothing="none"),
    "tracking (defaults, no smoothing)": TrackConfig(smoothing="none"),
    "tracking + One-Euro (default)": TrackConfig(),
    "tracking + Savitzky-Golay": TrackConfig(smoothing="savgol"),
}


def crowd(n: int, seed: int):
    """(poses rows with truth_id, {(truth_id, frame): noiseless [18, 3]}) of n walkers."""
    rng = np.random.default_rng(seed)
    frames = range(int(FPS * SECONDS))
    people = {}
    for pid in range(n):
        height = rng.uniform(80, 250)
        speed, heading = rng.uniform(30, 150) / FPS, rng.uniform(0, 2 * np.pi)
        start = rng.uniform((100, 100), (VIEW[0] - 100, VIEW[1] - 300))
        people[pid] = walker(start, (speed * np.cos(heading), speed * np.sin(heading)), frames, height)
    rows = rows_from(people, fps=FPS, seed=seed, noise_px=2.0)
    rows = rows[rng.random(len(rows)) >= POSE_MISS].reset_index(drop=True)
    for kp in rows["keypoints"]:                      # float32 [54] arrays, changed in place
        kp.reshape(18, 3)[rng.random(18) < JOINT_MISS] = (np.nan, np.nan, 0.0)
    truth = {(pid, f): kp for pid, track in people.items() for f, kp in track.items()}
    return rows, truth


def smoothing_error(rows, truth, tracked) -> float:
    """RMS px distance to the truth of the found joints of tracked rows (keypoints_smoothed, or the
    raw keypoints where the row has none)."""
    errs = []
    for raw, smooth, pid, f in zip(tracked["keypoints"], tracked["keypoints_smoothed"], rows["truth_id"],
                                   rows["frame_index"]):
        kp = np.asarray(raw).reshape(18, 3)
        xy = np.asarray(smooth).reshape(18, 3)[:, :2] if smooth is not None else kp[:, :2]
        seen = kp[:, 2] > 0
        errs.append(((xy[seen] - truth[(pid, f)][seen, :2]) ** 2).sum(-1))
    return float(np.sqrt(np.concatenate(errs).mean()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="one repeat (smoke run)")
    args = ap.parse_args()
    repeats = 1 if args.quick else 3
    frames = int(FPS * SECONDS)
    results = []
    print(f"{'people':>6} | {'case':<42} | {'ms/frame':>8} | {'x baseline':>10} | {'tracks':>6} | "
          f"{'IDF1':>5} | {'ID sw':>5} | {'RMS px':>6}")
    for n in PEOPLE:
        rows, truth = crowd(n, seed=n)
        base = None
        for name, config in CASES.items():
            ms = cpu_ms(lambda: track_video(rows, config), repeats) / frames
            base = base or ms
            tracked, tracks = track_video(rows, config)
            scores = identity_scores(rows["frame_index"], rows["truth_id"], tracked["track_id"])
            rms = smoothing_error(rows, truth, tracked)
            results.append({"people": n, "case": name, "ms_per_frame": round(ms, 3), "x_baseline": round(ms / base, 2),
                            "tracks": len(tracks), "idf1": round(scores["idf1"], 4),
                            "id_switches": int(scores["id_switches"]), "rms_px": round(rms, 3),
                            "config": asdict(config)})
            print(f"{n:>6} | {name:<42} | {ms:8.3f} | {ms / base:10.2f} | {len(tracks):>6} | "
                  f"{scores['idf1']:5.3f} | {int(scores['id_switches']):>5} | {rms:6.2f}")
    out = {"benchmark": "tracking_speed",
           "timer": "time.process_time, one BLAS thread, median, per frame",
           "scene": {"fps": FPS, "seconds": SECONDS, "view": VIEW, "noise_px": 2.0, "pose_miss": POSE_MISS,
                     "joint_miss": JOINT_MISS,
                     "speed_px_per_s": [30, 150], "height_px": [80, 250]},
           "repeats": repeats,
           "machine": {"python": platform.python_version(), "numpy": np.__version__, "cpu": platform.machine(),
                       "cores_available": len(os.sched_getaffinity(0))},
           "results": results}
    path = REPO / "bench" / "results" / "tracking_speed.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
