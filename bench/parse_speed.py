"""Parser speed: ms per frame by number of people, vectorised pipeline.parsing vs the per-candidate
Python-loop reference (pipeline/testing_reference.py), on maps rendered from known skeletons; plus
bytes per frame of the full maps vs the compact LimbCandidates hand-off.

    python bench/parse_speed.py [--quick]

Times are CPU seconds of this process (time.process_time) with BLAS/OpenMP pinned to one
thread, i.e. one core's work, medians over repeats. Before timing, each configuration checks
that the reference and the package find the same people (and all of the rendered ones).
Prints a table and writes bench/results/parse_speed.json.
"""
from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import pickle  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

from pipeline.parsing import ParseConfig, find_candidates, parse, render_fields  # noqa: E402
from pipeline.testing import cpu_ms, expected_people, grid_people, random_draws  # noqa: E402
from pipeline.testing_reference import reference_parse  # noqa: E402

IMAGE_SIZE = (656, 368)  # -> 46 x 82 stride-8 cells
PEOPLE = (1, 5, 20, 50)
MODES = (("greedy", 1), ("hungarian", 1), ("greedy", 8), ("hungarian", 8))


def same_people(a, b) -> bool:
    return (a.keypoints.shape == b.keypoints.shape
            and np.allclose(a.keypoints, b.keypoints, atol=1e-3, equal_nan=True)
            and np.allclose(a.scores, b.scores, atol=1e-5))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats (smoke run)")
    args = ap.parse_args()
    fast_repeats, ref_repeats = (5, 1) if args.quick else (25, 3)

    rows = []
    for n in PEOPLE:
        rng = np.random.default_rng(n)
        skeletons = grid_people(IMAGE_SIZE, random_draws(n, rng), min_height=30.0, margin=24.0)
        fields = render_fields(skeletons, IMAGE_SIZE)
        for matching, upsample in MODES:
            cfg = ParseConfig(matching=matching, upsample=upsample)
            fast, ref = parse(fields, cfg), reference_parse(fields, cfg)
            if not same_people(fast, ref):
                raise SystemExit(f"reference and package disagree: {n} people, {matching}, upsample {upsample}")
            if len(fast) != len(expected_people(skeletons, cfg.min_parts)):
                raise SystemExit(f"{len(fast)} people found of {n} rendered ({matching}, upsample {upsample})")
            cands = find_candidates(fields, cfg)
            fast_ms = cpu_ms(lambda: parse(fields, cfg), fast_repeats)
            ref_ms = cpu_ms(lambda: reference_parse(fields, cfg), ref_repeats)
            rows.append({
                "people": n, "matching": matching, "upsample": upsample,
                "map_cells": list(fields.heatmaps.shape[1:]),
                "fast_ms": round(fast_ms, 3), "reference_ms": round(ref_ms, 3),
                "speedup": round(ref_ms / fast_ms, 1),
                "candidates_ms": round(cpu_ms(lambda: find_candidates(fields, cfg), fast_repeats), 3),
                "maps_bytes_float32": int(fields.heatmaps.nbytes + fields.pafs.nbytes),
                "maps_bytes_float16": int((fields.heatmaps.size + fields.pafs.size) * 2),
                "candidates_bytes": int(cands.nbytes()),
                "candidates_pickled_bytes": len(pickle.dumps(cands, protocol=pickle.HIGHEST_PROTOCOL)),
                "same_people_as_reference": True,
            })
            r = rows[-1]
            print(f"{n:>3} people {matching:<9} x{upsample}: {fast_ms:8.2f} ms vs reference "
                  f"{ref_ms:9.1f} ms  ({r['speedup']:.1f}x)  hand-off {r['candidates_bytes']} B", flush=True)

    by_mode = {}
    for matching, upsample in MODES:
        sel = [r for r in rows if r["matching"] == matching and r["upsample"] == upsample]
        by_mode[f"{matching}_x{upsample}"] = round(statistics.median(r["speedup"] for r in sel), 1)
    summary = {
        "median_speedup_by_mode": by_mode,
        "median_speedup_all": round(statistics.median(r["speedup"] for r in rows), 1),
        "fast_ms_20_people_greedy_x1": next(r["fast_ms"] for r in rows
                                            if r["people"] == 20 and r["matching"] == "greedy" and r["upsample"] == 1),
    }

    head = ("| people | matching | peaks | parse ms | reference ms | speedup | maps f32 B | maps f16 B "
            "| LimbCandidates B (pickled) |")
    print("\n" + head + "\n|" + "---|" * 9)
    for r in rows:
        print(f"| {r['people']} | {r['matching']} | {'map' if r['upsample'] == 1 else 'x%d' % r['upsample']} "
              f"| {r['fast_ms']:.2f} | {r['reference_ms']:.1f} | {r['speedup']:.1f}x | {r['maps_bytes_float32']} "
              f"| {r['maps_bytes_float16']} | {r['candidates_bytes']} ({r['candidates_pickled_bytes']}) |")
    print(f"\nmedian speed-up by mode: {by_mode}; all rows: {summary['median_speedup_all']}x")

    out = {
        "benchmark": "parse_speed",
        "timer": "time.process_time, one BLAS thread, median",
        "image_size": list(IMAGE_SIZE), "repeats": {"package": fast_repeats, "reference": ref_repeats},
        "machine": {"python": platform.python_version(), "numpy": np.__version__,
                    "cpu": platform.processor() or platform.machine(), "cores_available": os.cpu_count()},
        "config_defaults": ParseConfig().to_dict(),
        "rows": rows, "summary": summary,
    }
    path = REPO / "bench" / "results" / "parse_speed.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
