"""Network throughput (images/s) for every registered PAF network, by input size and batch size.

Network only: a real photo (media/images/p3.jpg) preprocessed for the network (registry
preprocessing) is repeated to the batch size and timed through ``PoseNetRunner.forward_batch``
(maps copied back to numpy), median of ``--iters`` runs after one warm-up. CPU columns: the torch
backend (fp32) and the openvino backend (f32 inference precision; omz-lightweight runs its INT8 IR).
Sizes are (width, height) in pixels: each network's native input (registry metadata / fixed input
size) plus, for flexible-size networks, ``--extra-sizes``. Ratios are against omz-lightweight at the
same size and batch size, measured in the same run. CPU fp32 is always measured; the CUDA columns
(fp32, fp16 and bf16 autocast, all channels_last) only when torch sees a GPU, else "not measured".
Networks whose weights are not in the model directory (cmu-vgg19-coco) are timed with random
weights of the same architecture (speed does not depend on weight values) and marked so.

    python bench/model_throughput.py [--models ...] [--batch-sizes 1 4] [--extra-sizes 432x368 656x368 ...]
                                     [--iters 3] [--threads N]

Prints a Markdown table and writes bench/results/model_throughput.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("POSEPIPE_SHARED_DIR", REPO.parent / "shared"))
os.environ.setdefault("POSEPIPE_MODEL_DIR", str(SHARED / "models"))

from pipeline.models import WeightsError, get, list_models  # noqa: E402
from pipeline.models.inference import PoseNetRunner, preprocess  # noqa: E402

BASELINE = "omz-lightweight"
NOT_MEASURED = "not measured (no GPU)"
CUDA_CONFIGS = (("fp32", True), ("fp16", True), ("bf16", True))  # (precision, channels_last)


def make_runner(name: str, device: str = "cpu", precision: str = "fp32",
                channels_last: bool = False, backend: str = "torch",
                num_threads: int | None = None) -> tuple[PoseNetRunner | None, str]:
    """A runner for ``name`` and where its weights came from (random weights if the files are absent;
    torch backend only)."""
    kwargs = dict(device=device, precision=precision, channels_last=channels_last, backend=backend,
                  num_threads=num_threads)
    try:
        return PoseNetRunner(name, **kwargs), "registry"
    except WeightsError:
        if get(name).architecture != "cmu_vgg19":
            raise
        from pipeline.models.cmu_vgg19 import CmuVgg19PafNet

        if backend != "torch":
            return None, "not measured (weights not in model dir)"
        return PoseNetRunner(name, model=CmuVgg19PafNet(), **kwargs), "random (weights not in model dir)"


def from_ir_float() -> torch.nn.Module:
    """omz-lightweight with its activation fake-quantisers disabled (plain float network)."""
    from pipeline.models import fetch_files
    from pipeline.models.lightweight_openpose import BIN_NAME, XML_NAME, from_ir
    from pipeline.models.loaders.openvino_ir import read_ir

    files = fetch_files(get(BASELINE))
    return from_ir(read_ir(files[XML_NAME], files[BIN_NAME]), activation_quant=False)


def sizes_for(name: str, extra: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """(width, height) input sizes to time ``name`` at: native first, then ``extra`` if size-flexible."""
    entry = get(name)
    native = entry.preprocessing.input_size or entry.metadata.get("native_input_wh")
    if native is None:
        h = entry.preprocessing.target_height
        native = (round(h * 16 / 9 / 8) * 8, h)
    out = [tuple(int(v) for v in native)]
    if entry.preprocessing.input_size is None:
        out += [s for s in extra if s not in out]
    return out


def batch_input(name: str, size: tuple[int, int], batch: int) -> np.ndarray:
    """float32 [batch, 3, H, W]: p3.jpg resized to ``size`` and preprocessed for ``name``."""
    w, h = size
    img = cv2.resize(cv2.imread(str(SHARED / "media" / "images" / "p3.jpg")), (w, h), interpolation=cv2.INTER_AREA)
    x = preprocess([img], get(name).preprocessing, target_height=h)[0].input
    assert x.shape == (3, h, w), (name, x.shape)
    return np.ascontiguousarray(np.repeat(x[None], batch, axis=0))


def images_per_s(runner: PoseNetRunner, x: np.ndarray, iters: int, budget_s: float = 8.0) -> float:
    """Median images/s of ``runner.forward_batch(x)`` over up to ``iters`` runs after one warm-up
    (fewer, at least one, when the warm-up says they would take more than ``budget_s`` seconds)."""
    t0 = time.perf_counter()
    runner.forward_batch(x)
    iters = max(1, min(iters, int(budget_s / (time.perf_counter() - t0))))
    times = []
    for _ in range(iters):
        if runner.backend == "torch" and runner.network.device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        runner.forward_batch(x)
        times.append(time.perf_counter() - t0)
    return x.shape[0] / statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=list_models())
    ap.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 4])
    ap.add_argument("--extra-sizes", nargs="*", default=["432x368"], help="WxH for size-flexible networks")
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="CPU threads of both backends (default: theirs)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "model_throughput.json")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    extra = [tuple(int(v) for v in s.split("x")) for s in args.extra_sizes]
    cuda = torch.cuda.is_available()
    rows = []
    for name in args.models:
        cpu_runner, weights = make_runner(name)
        openvino_runner, _ = make_runner(name, backend="openvino", num_threads=args.threads)
        if name == BASELINE:  # cost of reproducing OpenVINO's INT8 rounding: same net, quantisers off
            plain = PoseNetRunner(name, model=from_ir_float(), backend="torch")
            x = batch_input(name, sizes_for(name, [])[0], 1)
            rows.append({"model": f"{name} [float, no activation quantisation]", "weights": "registry",
                         "width": x.shape[3], "height": x.shape[2], "batch": 1,
                         "cpu_fp32": round(images_per_s(plain, x, args.iters), 3), "cpu_openvino": "-",
                         **{f"cuda_{p}{'_cl' if cl else ''}": "-" for p, cl in CUDA_CONFIGS}})
        cuda_runners = {cfg: make_runner(name, "cuda", *cfg)[0] for cfg in CUDA_CONFIGS} if cuda else {}
        for size in sizes_for(name, extra):
            for batch in args.batch_sizes:
                x = batch_input(name, size, batch)
                row = {"model": name, "weights": weights, "width": size[0], "height": size[1], "batch": batch,
                       "cpu_fp32": round(images_per_s(cpu_runner, x, args.iters), 3),
                       "cpu_openvino": (round(images_per_s(openvino_runner, x, args.iters), 3)
                                        if openvino_runner is not None else "not measured")}
                for (prec, cl), runner in cuda_runners.items():
                    row[f"cuda_{prec}{'_cl' if cl else ''}"] = round(images_per_s(runner, x, args.iters * 10), 1)
                if not cuda:
                    row.update({f"cuda_{p}{'_cl' if cl else ''}": NOT_MEASURED for p, cl in CUDA_CONFIGS})
                rows.append(row)
                print(f"  {name} {size[0]}x{size[1]} b{batch}: {row['cpu_fp32']} img/s (CPU torch fp32), "
                      f"{row['cpu_openvino']} (openvino)", file=sys.stderr)
    base = {(r["width"], r["height"], r["batch"]): r["cpu_fp32"] for r in rows if r["model"] == BASELINE}
    print(" ", file=sys.stderr)
    for r in rows:
        b = base.get((r["width"], r["height"], r["batch"]))
        r["cpu_vs_omz"] = round(r["cpu_fp32"] / b, 3) if b else None
    cuda_cols = [f"cuda_{p}{'_cl' if cl else ''}" for p, cl in CUDA_CONFIGS]
    header = ["model", "input WxH", "batch", "CPU torch fp32 img/s", f"CPU torch vs {BASELINE}",
              "CPU openvino img/s", *cuda_cols]
    print("\n| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for r in rows:
        ratio = "-" if r["cpu_vs_omz"] is None else f"{r['cpu_vs_omz']:.2f}"
        mark = "" if r["weights"] == "registry" else " (random weights)"
        print(f"| {r['model']}{mark} | {r['width']}x{r['height']} | {r['batch']} | {r['cpu_fp32']:.2f} | {ratio} | "
              f"{r['cpu_openvino']} | "
              + " | ".join(str(r[c]) for c in cuda_cols) + " |")
    meta = {"torch": torch.__version__, "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "load_avg_1m": os.getloadavg()[0], "cuda": torch.cuda.get_device_name() if cuda else None,
            "iters": args.iters, "image": "media/images/p3.jpg"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
