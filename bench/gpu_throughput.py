"""The GPU path at the hardware's limit, as one prepared command: network-only images/s per model,
bucket (padded canvas) and precision, device vs host candidates, end-to-end images/s on the sample
photos and video, GPU utilisation and the CPU cores one GPU needs. Writes bench/results/gpu_throughput.json.

    python bench/gpu_throughput.py --quick                 # on a GPU node: at most ~8 minutes
    python bench/gpu_throughput.py --quick --device cpu    # the same code on CPU torch, < 2 minutes
    python bench/gpu_throughput.py [--models ...] [--buckets 456x256 656x368] [--batch-sizes ...]

Sections (each is recorded, or its error / "not available" is, and the run goes on):

- ``networks``: per model and bucket, FLOPs (torch FlopCounterMode, 2 per multiply-add) and the bytes of
  activations an image moves (forward hooks: input + output of every convolution = fused conv+activation,
  and of every leaf module = eager), hence the memory-bound ceiling HBM bandwidth / bytes. Network-only
  images/s (input already on the device, uint8 -> network_input -> network, outputs left there) per
  batch size x precision (fp32 / fp16 / bf16 autocast; channels_last on CUDA, NCHW on CPU), then the
  best one in the other memory format. Peak memory per image and the batch that fits.
- ``candidates``: the default network's maps of the sample photos in one padded batch: find_candidates_torch
  on the device vs maps copied to the host + pipeline.parsing.find_candidates per image (ms per image,
  bytes crossing, same people found).
- ``precision_ap``: COCO AP on ../shared/eval/coco-val2017-mini per precision through the device path
  (fp16/bf16 may be the CUDA default if within 0.005 of fp32).
- ``end_to_end``: CPU decoding (cv2 JPEG/PNG decode in a thread pool; the sample video by PyAV), then
  the device path (letterbox to uint8 -> pinned ring -> copy stream -> network_input -> network ->
  device candidates) and, as the baseline in the same run, the host path of today's job (float32
  preprocess -> pageable copy -> network -> maps to the host -> numpy find_candidates), both with
  pipeline.parsing.assemble in worker processes and several batches in flight; images/s, CPU ms per
  image, GPU utilisation (torch.cuda.utilization, else nvidia-smi). GPU decoders (torchvision's CUDA
  decode_jpeg, nvImageCodec, torchcodec's NVDEC VideoDecoder) are measured when importable, else
  recorded as "not available".
- ``graph_variants`` (CUDA only, run last since compiling takes minutes): CUDA graphs, torch.compile and
  both at the best eager setting of the first bucket, added to its rows.
- ``cpu_stage_costs`` / ``cpu_cores``: per-core ms of decode, letterbox and assembly, and the cores one GPU needs at its
  best network-only rate (and at the 13k images/s target).

On CPU (``--device cpu``) every figure is a CPU torch figure and the JSON says so (``measured_on``).
"""
from __future__ import annotations

import argparse
import collections
import concurrent.futures as cf
import copy
import dataclasses
import functools
import json
import multiprocessing
import os
import platform
import queue
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("POSEPIPE_SHARED_DIR", REPO.parent / "shared"))
os.environ.setdefault("POSEPIPE_MODEL_DIR", str(SHARED / "models"))

from pipeline.fields import PoseFields  # noqa: E402
from pipeline.models import get, list_models, load_model  # noqa: E402
from pipeline.models.device_candidates import MapGeometry, find_candidates_torch, network_input  # noqa: E402
from pipeline.models.preprocessing import Placement, crop_to_image, preprocess  # noqa: E402
from pipeline.parsing import ParseConfig, assemble, find_candidates  # noqa: E402

#: Dense peak TFLOP/s (no 2:4 sparsity) and HBM TB/s from NVIDIA datasheets (A10G: AWS's variant).
#: "tf32" is the tensor-core rate fp32 convolutions get when cuDNN may use TF32 (PyTorch's default
#: for convolutions). Matched against torch.cuda.get_device_name() in this order (first hit wins).
GPU_SPECS: dict[str, dict[str, float | None]] = {
    "H200":      {"fp32": 67.0, "tf32": 494.7, "fp16": 989.4, "bf16": 989.4, "hbm_tbps": 4.8},
    "H100 PCIe": {"fp32": 51.2, "tf32": 378.0, "fp16": 756.0, "bf16": 756.0, "hbm_tbps": 2.0},
    "H100":      {"fp32": 67.0, "tf32": 494.7, "fp16": 989.4, "bf16": 989.4, "hbm_tbps": 3.35},  # SXM
    "A100":      {"fp32": 19.5, "tf32": 156.0, "fp16": 312.0, "bf16": 312.0, "hbm_tbps": 2.04},  # 80 GB SXM
    "L40S":      {"fp32": 91.6, "tf32": 183.0, "fp16": 362.0, "bf16": 362.0, "hbm_tbps": 0.864},
    "A10G":      {"fp32": 31.5, "tf32": 35.0, "fp16": 70.0, "bf16": 70.0, "hbm_tbps": 0.6},
    "A10":       {"fp32": 31.2, "tf32": 62.5, "fp16": 125.0, "bf16": 125.0, "hbm_tbps": 0.6},
    "L4":        {"fp32": 30.3, "tf32": 60.0, "fp16": 121.0, "bf16": 121.0, "hbm_tbps": 0.3},
    "T4":        {"fp32": 8.1, "tf32": None, "fp16": 65.0, "bf16": None, "hbm_tbps": 0.32},
    "V100":      {"fp32": 15.7, "tf32": None, "fp16": 125.0, "bf16": None, "hbm_tbps": 0.9},
}
AUTOCAST = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
TARGET_IMAGES_PER_S = 13_000  # issue 16: omz-lightweight network-only target on an H100/H200
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
VIDEO = "one-by-one-person-detection.mp4"


# ------------------------------------------------------------------------------------------ helpers
class Budget:
    """Wall-clock budget of the whole run: sections past it are recorded as skipped."""

    def __init__(self, seconds: float):
        self.end = time.perf_counter() + seconds

    def left(self) -> float:
        return self.end - time.perf_counter()


def section(result: dict, key: str, budget: Budget, fn, *args, min_left_s: float = 5.0):
    """result[key] = fn(*args), or what stopped it (an error, or the time budget); never raises."""
    if budget.left() < min_left_s:
        result[key] = f"skipped: time budget spent ({budget.left():.0f} s left)"
        return None
    t0 = time.perf_counter()
    try:
        result[key] = fn(*args)
    except Exception as exc:  # noqa: BLE001 - one failed measurement must not lose the others
        result[key] = f"failed: {type(exc).__name__}: {exc}"
    print(f"  {key}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return result[key]


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def seconds_per_call(fn, device: torch.device, min_iters: int, min_seconds: float, warmup: int) -> float:
    """Median wall seconds per ``fn()`` over timed calls after ``warmup`` untimed ones (the device is
    synchronised after each), at least ``min_iters`` calls and ``min_seconds`` in all."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    times, spent = [], 0.0
    while len(times) < min_iters or spent < min_seconds:
        t0 = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - t0)
        spent += times[-1]
        if len(times) >= 10 * min_iters and spent >= min_seconds / 4:
            break
    return statistics.median(times)


def gpu_specs(device: torch.device) -> tuple[str | None, dict]:
    """(GPU_SPECS key, its figures) for this CUDA device; (None, {}) for CPU or an unknown GPU."""
    if device.type != "cuda":
        return None, {}
    name = torch.cuda.get_device_name(device)
    return next(((k, v) for k, v in GPU_SPECS.items() if k in name), (None, {}))


def letterbox(image: np.ndarray, canvas_wh: tuple[int, int], stride: int) -> tuple[np.ndarray, Placement]:
    """Resize a uint8 BGR image to fit a canvas of canvas_wh pixels (aspect kept, top-left) ->
    (uint8 [h, w, 3] resized pixels, its Placement); the canvas is padded on the device."""
    H, W = image.shape[:2]
    f = min(canvas_wh[0] / W, canvas_wh[1] / H)
    w, h = min(canvas_wh[0], max(1, round(W * f))), min(canvas_wh[1], max(1, round(H * f)))
    resized = image if (w, h) == (W, H) else cv2.resize(
        image, (w, h), interpolation=cv2.INTER_AREA if w < W else cv2.INTER_LINEAR)
    return resized, Placement((W, H), (w, h), tuple(canvas_wh), False, stride)


def canvas_batch(resized: list[np.ndarray], canvas_wh: tuple[int, int]) -> torch.Tensor:
    """uint8 [N, H, W, 3] host tensor holding each resized image top-left, zeros elsewhere."""
    out = torch.zeros((len(resized), canvas_wh[1], canvas_wh[0], 3), dtype=torch.uint8)
    view = out.numpy()
    for k, img in enumerate(resized):
        view[k, :img.shape[0], :img.shape[1]] = img
    return out


def sample_images() -> list[tuple[str, bytes]]:
    folder = SHARED / "media" / "images"
    return [(p.name, p.read_bytes()) for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]


def decode(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


def bucket_wh(text: str) -> tuple[int, int]:
    w, _, h = text.partition("x")
    if not (w.isdigit() and h.isdigit()) or int(w) % 8 or int(h) % 8:
        raise argparse.ArgumentTypeError(f"bucket {text!r} must be WIDTHxHEIGHT in pixels, multiples of 8")
    return int(w), int(h)


# ---------------------------------------------------------------------------------- network only
@functools.lru_cache(maxsize=None)
def cpu_model(name: str) -> torch.nn.Module:
    """The registry network on the CPU, loaded once per run (callers copy it)."""
    return load_model(name, device="cpu")


class Network:
    """A registry network on the device: uint8 canvases -> network_input -> forward under autocast."""

    def __init__(self, name: str, device: torch.device, precision: str, channels_last: bool | None = None):
        self.entry = get(name)
        self.device, self.dtype = device, AUTOCAST[precision]
        self.channels_last = device.type == "cuda" if channels_last is None else channels_last
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        self.model = copy.deepcopy(cpu_model(name)).to(device).to(memory_format=fmt)
        self.forward = self._eager

    def _eager(self, x: torch.Tensor):
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32,
                            cache_enabled=False):  # no weight-cast cache: CUDA-graph capture safe
            return self.model(x if self.channels_last else x.contiguous())

    @torch.inference_mode()
    def __call__(self, pixels: torch.Tensor, resized_sizes=None):
        return self.forward(network_input(pixels, self.entry.preprocessing, resized_sizes))


def flops_and_traffic(name: str, canvas_wh: tuple[int, int]) -> tuple[float, dict]:
    """(FLOPs per image by FlopCounterMode, bytes one image moves) at batch 1 on the CPU.

    Bytes (fp16 elements) by forward hooks: every Conv2d's input + output (as if each activation
    were fused into its convolution) and every leaf module's input + output (eager: one kernel per
    module), plus the weights and the input/output sizes for reference."""
    from torch.utils.flop_counter import FlopCounterMode

    model = cpu_model(name)
    conv, leaf = [0], [0]

    def hook(module, inputs, output):
        outs = output if isinstance(output, (tuple, list)) else (output,)
        n = sum(t.numel() for t in (*inputs, *outs) if isinstance(t, torch.Tensor))
        leaf[0] += 2 * n
        if isinstance(module, torch.nn.Conv2d):
            conv[0] += 2 * n

    handles = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    counter = FlopCounterMode(display=False)
    try:
        with torch.inference_mode(), counter:
            heat, paf = model(torch.zeros(1, 3, canvas_wh[1], canvas_wh[0]))
    finally:
        for h in handles:
            h.remove()
    pixels = canvas_wh[0] * canvas_wh[1]
    return float(counter.get_total_flops()), {
        "conv_fused_bytes_fp16": conv[0], "eager_leaf_bytes_fp16": leaf[0],
        "weights_bytes_fp16": 2 * sum(p.numel() for p in model.parameters()),
        "input_uint8_bytes": 3 * pixels, "input_float32_bytes": 12 * pixels,
        "maps_float32_bytes": 4 * (heat.numel() + paf.numel())}


def photo_canvases(name: str, canvas_wh: tuple[int, int], batch: int) -> tuple[torch.Tensor, list, list]:
    """(uint8 [batch, H, W, 3] canvases of the sample photos, cycled; resized sizes; placements)."""
    stride = get(name).preprocessing.stride
    images = [decode(data) for _, data in sample_images()]
    boxed = [letterbox(images[k % len(images)], canvas_wh, stride) for k in range(batch)]
    return (canvas_batch([r for r, _ in boxed], canvas_wh),
            [p.resized_size for _, p in boxed], [p for _, p in boxed])


def network_row(name: str, device: torch.device, canvas_wh, batch: int, precision: str, args,
                channels_last: bool | None = None, compile_mode: str | None = None, cuda_graphs: bool = False) -> dict:
    """One network-only measurement: images/s of the forward pass on a float input already on the
    device (outputs left there), and ms per image of network_input (the uint8 hand-off) on the same
    batch. channels_last None: on CUDA only, as the job's runner."""
    net = Network(name, device, precision, channels_last)
    row = {"bucket": f"{canvas_wh[0]}x{canvas_wh[1]}", "batch": batch, "precision": precision,
           "channels_last": net.channels_last, "compile": compile_mode, "cuda_graphs": cuda_graphs}
    pixels, sizes, _ = photo_canvases(name, canvas_wh, batch)
    pixels = pixels.to(device)
    with torch.inference_mode():
        hand_off = lambda: network_input(pixels, net.entry.preprocessing, sizes)  # noqa: E731
        row["network_input_ms_per_image"] = round(1000 * seconds_per_call(hand_off, device, 3, 0.0, 1) / batch, 4)
        static_in = hand_off()
    t_setup = time.perf_counter()
    if compile_mode is not None:
        net.forward = torch.compile(net._eager, mode="reduce-overhead" if cuda_graphs else compile_mode)

    @torch.inference_mode()
    def step():
        return net.forward(static_in)

    if compile_mode is None:  # fp16 may overflow: a row whose maps are not finite cannot be the best
        row["finite_maps"] = bool(all(torch.isfinite(t).all() for t in step()))

    if cuda_graphs and compile_mode is None:
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            for _ in range(3):
                step()
        torch.cuda.current_stream(device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            step()
        step = graph.replay
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for _ in range(args.warmup if compile_mode is None else 2 * args.warmup):  # compiling / autotuning happens here
        step()
    synchronize(device)
    row["setup_and_warmup_s"] = round(time.perf_counter() - t_setup, 1)
    seconds = seconds_per_call(step, device, args.min_iters, args.min_seconds, 0)
    row["images_per_s"] = round(batch / seconds, 1)
    if device.type == "cuda":
        row["peak_memory_mb_per_image"] = round(torch.cuda.max_memory_allocated(device) / batch / 2 ** 20, 2)
    del net, pixels, static_in
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return row


def guarded_row(rows: list, device: torch.device, *args, **variant) -> None:
    """Append network_row(*args, **variant), or the error that stopped it (e.g. out of memory)."""
    try:
        rows.append(network_row(*args, **variant))
    except Exception as exc:  # noqa: BLE001 - a large batch, compile or graphs may fail: record, go on
        name, dev, canvas, batch, precision = args[:5]
        rows.append({**variant, "bucket": f"{canvas[0]}x{canvas[1]}", "batch": batch, "precision": precision,
                     "error": f"{type(exc).__name__}: {exc}"[:500]})
        if device.type == "cuda":
            torch.cuda.empty_cache()


def summarise(b: dict, device: torch.device) -> None:
    """b["best"]: the fastest row of bucket entry ``b`` with its share of the GPU's peak FLOP/s and
    of the memory-bound ceiling, and the batch that fits half the GPU's memory."""
    ok = [r for r in b["rows"] if "images_per_s" in r and r.get("finite_maps", True)]
    if not ok:
        return
    best = b["best"] = dict(max(ok, key=lambda r: r["images_per_s"]))
    _, spec = gpu_specs(device)
    if spec:
        prec = best["precision"]
        mode = "tf32" if prec == "fp32" and torch.backends.cudnn.allow_tf32 and spec.get("tf32") else prec
        achieved = best["images_per_s"] * b["gflops_per_image"] / 1e3
        best["achieved_tflops"] = round(achieved, 2)
        best["fraction_of_peak_flops"] = round(achieved / spec[mode], 4) if spec.get(mode) else None
        for kind in ("conv_fused", "eager_leaf"):
            ceiling = b.get(f"memory_bound_ceiling_images_per_s_{kind}")
            if ceiling:
                best[f"fraction_of_memory_ceiling_{kind}"] = round(best["images_per_s"] / ceiling, 3)
    per_image = best.get("peak_memory_mb_per_image")
    if per_image and device.type == "cuda":
        total = torch.cuda.get_device_properties(device).total_memory / 2 ** 20
        b["batch_fitting_half_the_gpu_memory"] = int(0.5 * total / per_image)


def measure_network(name: str, device: torch.device, args, budget: Budget) -> dict:
    """FLOPs, bytes, memory-bound ceiling and the eager images/s sweep of one model per bucket
    (batch x precision, then the best one with the other memory format)."""
    out = {}
    key, spec = gpu_specs(device)
    entry = get(name)
    buckets = args.buckets or [tuple(entry.metadata.get("native_input_wh") or entry.preprocessing.input_size)]
    if entry.preprocessing.input_size is not None:
        buckets = [tuple(entry.preprocessing.input_size)]  # fixed-size network: one canvas
    batches = args.batch_sizes if entry.batch_independent else [1]
    for canvas in buckets:
        b = out[f"{canvas[0]}x{canvas[1]}"] = {}
        flops, b["bytes_per_image"] = flops_and_traffic(name, canvas)
        b["gflops_per_image"] = round(flops / 1e9, 3)
        if spec.get("hbm_tbps"):
            for kind in ("conv_fused", "eager_leaf"):
                b[f"memory_bound_ceiling_images_per_s_{kind}"] = round(
                    spec["hbm_tbps"] * 1e12 / b["bytes_per_image"][f"{kind}_bytes_fp16"])
        rows = b["rows"] = []
        for precision in args.precisions:
            for batch in batches:
                if budget.left() < 20:
                    rows.append({"batch": batch, "precision": precision, "skipped": "time budget"})
                    continue
                guarded_row(rows, device, name, device, canvas, batch, precision, args)
        summarise(b, device)
        if "best" in b and budget.left() >= 20:
            guarded_row(rows, device, name, device, canvas, b["best"]["batch"], b["best"]["precision"], args,
                        channels_last=not b["best"]["channels_last"])
            summarise(b, device)
    out["gpu_spec"] = key
    return out


def measure_graph_variants(networks: dict, device: torch.device, args, budget: Budget) -> str:
    """CUDA graphs, torch.compile and both, at the best eager setting of omz-lightweight's first
    bucket (run last: compiling takes minutes); rows are added to that bucket's table."""
    omz = networks.get("omz-lightweight")
    if device.type != "cuda":
        return "not run (CUDA only: torch.compile and CUDA graphs are GPU variants here)"
    if not args.variants or not isinstance(omz, dict):
        return "not run (--no-variants, or omz-lightweight not measured)"
    bname, b = next((k, v) for k, v in omz.items() if isinstance(v, dict))
    if "best" not in b:
        return "not run (no eager figure)"
    canvas = tuple(int(v) for v in bname.split("x"))
    best = b["best"]
    done = []
    for variant, needs_s in (({"cuda_graphs": True}, 30), ({"compile_mode": "default"}, 150),
                             ({"compile_mode": "default", "cuda_graphs": True}, 150)):
        if budget.left() < needs_s:
            b["rows"].append({**variant, "skipped": f"time budget ({budget.left():.0f} s left)"})
            continue
        guarded_row(b["rows"], device, "omz-lightweight", device, canvas, best["batch"], best["precision"],
                    args, channels_last=best["channels_last"], **variant)
        done.append(variant)
    summarise(b, device)
    return f"ran {done} at bucket {bname}, batch {best['batch']}, {best['precision']}"


# ------------------------------------------------------------------------------ device candidates
@functools.lru_cache(maxsize=None)
def photo_maps(device: torch.device, canvas_wh: tuple[int, int], batch: int):
    """(heatmaps, pafs on the device, [MapGeometry]) of the default network (fp32) on ``batch``
    sample photos letterboxed into one canvas, computed once per run."""
    name = "omz-lightweight"
    net = Network(name, device, "fp32")
    pixels, sizes, placements = photo_canvases(name, canvas_wh, batch)
    heat, paf = net(pixels.to(device), sizes)
    return heat, paf, [MapGeometry.of_placement(p) for p in placements]


def measure_candidates(device: torch.device, args) -> dict:
    """find_candidates_torch on the device vs host numpy candidates, on the default network's maps."""
    canvas, batch = args.candidate_bucket, args.candidate_batch
    heat, paf, geometry = photo_maps(device, canvas, batch)
    config = ParseConfig()

    def on_device():
        return find_candidates_torch(heat, paf, geometry, config)

    def on_host():
        h, p = heat.float().cpu().numpy(), paf.float().cpu().numpy()
        out = []
        for k, g in enumerate(geometry):
            cw, ch = g.valid_cells
            fields = PoseFields(np.ascontiguousarray(h[k, :, :ch, :cw]), np.ascontiguousarray(p[k, :, :ch, :cw]),
                                g.scale, g.offset, g.image_size)
            out.append(find_candidates(fields, config))
        return out

    def copy_only():
        return heat.float().cpu(), paf.float().cpu()

    dev, host = on_device(), on_host()
    people_dev = [len(assemble(c, config)) for c in dev]
    people_host = [len(assemble(c, config)) for c in host]
    t_dev = seconds_per_call(on_device, device, 3 * args.min_iters, args.min_seconds, 1)
    t_host = seconds_per_call(on_host, device, 3 * args.min_iters, args.min_seconds, 1)
    t_copy = seconds_per_call(copy_only, device, 3 * args.min_iters, args.min_seconds, 1)
    return {"bucket": f"{canvas[0]}x{canvas[1]}", "batch": batch, "people_found": sum(people_host),
            "same_people_per_image": people_dev == people_host,
            "device_ms_per_image": round(1000 * t_dev / batch, 3),
            "host_ms_per_image_incl_copy": round(1000 * t_host / batch, 3),
            "maps_copy_ms_per_image": round(1000 * t_copy / batch, 3),
            "host_over_device": round(t_host / t_dev, 2),
            "bytes_to_host_per_image_maps_float32": int(4 * (heat.numel() + paf.numel()) / batch),
            "bytes_to_host_per_image_candidates": int(sum(c.nbytes() for c in dev) / batch)}


def measure_precision_ap(device: torch.device, args) -> dict:
    """COCO keypoint AP on coco-val2017-mini per precision through the device path (letterbox into
    a 656x368 canvas, i.e. height 368 as the job's default, network_input, network,
    find_candidates_torch, assemble): a reduced precision may become the CUDA default when its AP
    stays within 0.005 of fp32 (issue 16)."""
    from pipeline.evaluation import evaluate
    from pipeline.evaluation.poses_table import poses_frame

    folder = SHARED / "eval" / "coco-val2017-mini"
    annotations = folder / "person_keypoints.json"
    uris = [str(folder / img["file_name"]) for img in json.loads(annotations.read_text())["images"]]
    canvas = (656, 368)
    boxed = [letterbox(cv2.imread(u), canvas, 8) for u in uris]
    pixels = canvas_batch([r for r, _ in boxed], canvas).to(device)
    geometry = [MapGeometry.of_placement(p) for _, p in boxed]
    config = ParseConfig()
    out = {"images": len(uris), "bucket": "656x368", "resized_sizes": [list(p.resized_size) for _, p in boxed]}
    for precision in args.precisions:
        try:
            net = Network("omz-lightweight", device, precision)
            heat, paf = net(pixels, [p.resized_size for _, p in boxed])
            found = [assemble(c, config) for c in find_candidates_torch(heat, paf, geometry, config)]
        except Exception as exc:  # noqa: BLE001 - e.g. NaN maps from an fp16 overflow: record, go on
            out[precision] = f"failed: {type(exc).__name__}: {exc}"[:300]
            continue
        people = [(u, f.keypoints[k], float(f.scores[k])) for u, f in zip(uris, found) for k in range(len(f))]
        kps = np.stack([k for _, k, _ in people]) if people else np.zeros((0, 18, 3), np.float32)
        frame = poses_frame([u for u, _, _ in people], kps, [s for _, _, s in people],
                            model_id="omz-lightweight", config_id="bench", shard_id="bench")
        out[precision] = {"AP": round(evaluate(frame, annotations, per_image=False).stats["AP"], 4),
                          "people": len(people)}
    if isinstance(out.get("fp32"), dict):
        for precision in args.precisions:
            if isinstance(out[precision], dict):
                out[precision]["within_0.005_of_fp32"] = abs(out[precision]["AP"] - out["fp32"]["AP"]) <= 0.005
    return out


# ------------------------------------------------------------------------------------ end to end
class UtilisationSampler:
    """GPU utilisation % sampled every 0.2 s in a thread: torch.cuda.utilization (NVML), else nvidia-smi."""

    def __init__(self, device: torch.device):
        self.device, self.samples, self.source = device, [], None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _read(self) -> float | None:
        if self.source in (None, "torch.cuda.utilization"):
            try:
                value = float(torch.cuda.utilization(self.device))
                self.source = "torch.cuda.utilization"
                return value
            except Exception:  # noqa: BLE001 - no NVML bindings: fall back to nvidia-smi
                self.source = "nvidia-smi" if shutil.which("nvidia-smi") else "not available"
        if self.source == "nvidia-smi":
            index = self.device.index if self.device.index is not None else torch.cuda.current_device()
            out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                                  "-i", str(index)], capture_output=True, text=True, timeout=5)
            return float(out.stdout.strip().splitlines()[0]) if out.returncode == 0 else None
        return None

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            value = self._read()
            if value is not None:
                self.samples.append(value)

    def __enter__(self):
        if self.device.type == "cuda":
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def summary(self) -> dict | str:
        if self.device.type != "cuda":
            return "not applicable (CPU run)"
        if not self.samples:
            return f"not available ({self.source})"
        return {"mean_percent": round(statistics.fmean(self.samples), 1), "samples": len(self.samples),
                "source": self.source}


def assemble_batch(cands: list) -> tuple[int, float]:
    """(people found, CPU seconds spent) for a batch of LimbCandidates (runs in a worker process)."""
    t0 = time.process_time()
    config = ParseConfig()
    return sum(len(assemble(c, config)) for c in cands), time.process_time() - t0


class PinnedRing:
    """A few uint8 [batch, H, W, 3] host buffers (page-locked on CUDA) reused in turn; a buffer is
    refilled only after the device copy that read it has finished."""

    def __init__(self, count: int, batch: int, canvas_wh, device: torch.device):
        cuda = device.type == "cuda"
        self.buffers = [torch.empty((batch, canvas_wh[1], canvas_wh[0], 3), dtype=torch.uint8, pin_memory=cuda)
                        for _ in range(count)]
        self.copied = [torch.cuda.Event() if cuda else None for _ in range(count)]
        self.turn = 0

    def fill(self, resized: list[np.ndarray]) -> tuple[torch.Tensor, torch.cuda.Event | None]:
        """The next buffer holding ``resized`` top-left (stale pixels beyond them: network_input pads)."""
        k = self.turn
        self.turn = (k + 1) % len(self.buffers)
        if self.copied[k] is not None:
            self.copied[k].synchronize()
        view = self.buffers[k].numpy()
        for i, img in enumerate(resized):
            view[i, :img.shape[0], :img.shape[1]] = img
        return self.buffers[k][:len(resized)], self.copied[k]


class DevicePath:
    """The GPU path: letterbox (uint8) on the CPU; pinned uint8 ring -> copy stream -> network_input
    -> network -> find_candidates_torch; only candidates reach the host."""

    def __init__(self, net: Network, canvas_wh, batch: int, in_flight: int):
        self.net, self.canvas, self.config = net, canvas_wh, ParseConfig()
        self.copy_stream = torch.cuda.Stream(net.device) if net.device.type == "cuda" else None
        self.ring = PinnedRing(in_flight + 1, batch, canvas_wh, net.device)

    def prepare(self, image: np.ndarray):
        return letterbox(image, self.canvas, self.net.entry.preprocessing.stride)

    def candidates(self, chunk: list) -> list:
        device = self.net.device
        host, copied = self.ring.fill([r for r, _ in chunk])
        if self.copy_stream is not None:
            with torch.cuda.stream(self.copy_stream):
                pixels = host.to(device, non_blocking=True)
                copied.record(self.copy_stream)
            torch.cuda.current_stream(device).wait_stream(self.copy_stream)
            pixels.record_stream(torch.cuda.current_stream(device))
        else:
            pixels = host
        heat, paf = self.net(pixels, [p.resized_size for _, p in chunk])
        return find_candidates_torch(heat, paf, [MapGeometry.of_placement(p) for _, p in chunk], self.config)


class HostPath:
    """The host path as the baseline: float32 network inputs made on the CPU (Prepared.input of
    pipeline.models.preprocessing.preprocess, letterboxed into the same canvas), a pageable copy
    to the device, the network, both maps copied back, numpy find_candidates per image on the
    calling thread (the network actor's)."""

    def __init__(self, net: Network, canvas_wh, batch: int, in_flight: int):
        self.net, self.config = net, ParseConfig()
        self.prep = dataclasses.replace(net.entry.preprocessing, input_size=tuple(canvas_wh))

    def prepare(self, image: np.ndarray):
        return preprocess([image], self.prep)[0]

    def candidates(self, chunk: list) -> list:
        net = self.net
        x = torch.from_numpy(np.stack([p.input for p in chunk])).to(net.device)
        with torch.inference_mode():
            heat, paf = net.forward(x.contiguous(memory_format=torch.channels_last) if net.channels_last else x)
        heat, paf = heat.float().cpu().numpy(), paf.float().cpu().numpy()
        out = []
        for k, p in enumerate(chunk):
            h, f = crop_to_image(heat[k], paf[k], p.placement)
            scale, offset = p.placement.cell_geometry()
            fields = PoseFields(np.ascontiguousarray(h), np.ascontiguousarray(f), scale, offset, p.placement.image_size)
            out.append(find_candidates(fields, self.config))
        return out


def run_end_to_end(frames, path, batch: int, workers: int, in_flight: int, assembler: cf.Executor) -> dict:
    """Images/s of decode (``frames``: callables returning a uint8 BGR image) + ``path.prepare`` in a
    thread pool, ``in_flight`` batches ahead, -> ``path.candidates`` per batch -> assembly in worker
    processes (``assembler``)."""
    pending: collections.deque = collections.deque()
    assembling = []
    images = 0
    cv2.setNumThreads(1)  # the pool is the parallelism
    cpu0, t0 = time.process_time(), time.perf_counter()
    with cf.ThreadPoolExecutor(workers) as pool, UtilisationSampler(path.net.device) as util:
        frames = iter(frames)

        def fill() -> None:
            while len(pending) < in_flight * batch:
                job = next(frames, None)
                if job is None:
                    return
                pending.append(pool.submit(lambda j=job: path.prepare(j())))

        fill()
        while pending:
            chunk = [pending.popleft().result() for _ in range(min(batch, len(pending)))]
            fill()
            assembling.append(assembler.submit(assemble_batch, path.candidates(chunk)))
            images += len(chunk)
        done = [f.result() for f in assembling]
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    worker_cpu = sum(c for _, c in done)
    return {"images": images, "people_found": sum(p for p, _ in done), "images_per_s": round(images / wall, 1),
            "cpu_ms_per_image": round(1000 * (cpu + worker_cpu) / images, 2),
            "cpu_cores_busy": round((cpu + worker_cpu) / wall, 2), "gpu_utilisation": util.summary()}


def video_frames(limit: int) -> list:
    """Callables returning the sample video's first ``limit`` frames, decoded in order by PyAV in a
    producer thread (one sequential decoder; the pool overlaps resizing and the device)."""
    import av

    path = str(SHARED / "media" / "video" / VIDEO)
    with av.open(path) as container:
        count = min(limit, container.streams.video[0].frames or limit)
    frames: queue.Queue = queue.Queue(maxsize=512)

    def produce() -> None:
        with av.open(path) as container:
            stream = container.streams.video[0]
            stream.codec_context.thread_type = "AUTO"
            for k, frame in enumerate(container.decode(stream)):
                if k == count:
                    break
                frames.put(frame.to_ndarray(format="bgr24"))

    threading.Thread(target=produce, daemon=True).start()
    return [lambda: frames.get(timeout=60) for _ in range(count)]


def end_to_end_precision(result: dict) -> str:
    """The precision of omz-lightweight's fastest network-only row among those whose AP on the
    mini set is within 0.005 of fp32 (all, if AP was not measured); fp32 if nothing was measured."""
    omz = result["networks"].get("omz-lightweight")
    rows = [r for b in omz.values() if isinstance(b, dict) for r in b.get("rows", [])
            if "images_per_s" in r and r.get("finite_maps", True)] if isinstance(omz, dict) else []
    ap = result.get("precision_ap")
    if isinstance(ap, dict):
        close = {p for p, v in ap.items() if isinstance(v, dict) and v.get("within_0.005_of_fp32")}
        rows = [r for r in rows if r["precision"] in close]
    return max(rows, key=lambda r: r["images_per_s"])["precision"] if rows else "fp32"


def measure_end_to_end(device: torch.device, args, precision: str) -> dict:
    """Both paths (device = the GPU path, host = today's job path, the baseline) on the sample
    photos (cycled) and the sample video, CPU decoding."""
    name, canvas, batch = "omz-lightweight", args.e2e_bucket, args.e2e_batch
    net = Network(name, device, precision)
    photos = sample_images()
    out = {"model": name, "bucket": f"{canvas[0]}x{canvas[1]}", "batch": batch, "precision": precision,
           "decode_threads": args.decode_workers, "assembly_processes": args.assembly_workers,
           "batches_in_flight": args.in_flight}
    jobs = lambda n: [lambda d=photos[k % len(photos)][1]: decode(d) for k in range(n)]  # noqa: E731
    with cf.ProcessPoolExecutor(args.assembly_workers, mp_context=multiprocessing.get_context("spawn")) as assembler:
        list(assembler.map(assemble_batch, [[]] * args.assembly_workers))  # start the workers before timing
        for label, frames in (("photos_cpu_decode", lambda: jobs(args.e2e_images)),
                              ("video_cpu_decode", lambda: video_frames(args.video_frames))):
            out[label] = {}
            for kind, path_class in (("device_path", DevicePath), ("host_path", HostPath)):
                path = path_class(net, canvas, batch, args.in_flight)
                if device.type == "cuda":  # cuDNN picks its kernels for the batch shape on the first calls
                    run_end_to_end(jobs(batch), path, batch, args.decode_workers, 1, assembler)
                out[label][kind] = run_end_to_end(frames(), path, batch, args.decode_workers, args.in_flight,
                                                  assembler)
            out[label]["device_over_host"] = round(out[label]["device_path"]["images_per_s"]
                                                   / out[label]["host_path"]["images_per_s"], 2)
    out["gpu_decoders"] = gpu_decoders(device, photos)
    return out


def gpu_decoders(device: torch.device, photos) -> dict:
    """Decode-only images/s of the GPU decoders that are importable here (else "not available")."""
    out = {}
    jpegs = [data for name, data in photos if name.lower().endswith((".jpg", ".jpeg"))]
    cpu = seconds_per_call(lambda: [decode(d) for d in jpegs], torch.device("cpu"), 1, 0.5, 0)
    out["cv2_cpu_one_thread_images_per_s"] = round(len(jpegs) / cpu, 1)
    if device.type != "cuda":
        return {**out, "torchvision_decode_jpeg_cuda": "not applicable (CPU run)",
                "nvimgcodec": "not applicable (CPU run)", "torchcodec_nvdec": "not applicable (CPU run)"}
    try:
        from torchvision.io import decode_jpeg

        data = [torch.frombuffer(d, dtype=torch.uint8) for d in jpegs]
        reference = decode(jpegs[0])[:, :, ::-1]
        first = decode_jpeg(data[0], device=device).permute(1, 2, 0).cpu().numpy()
        t = seconds_per_call(lambda: decode_jpeg(data, device=device), device, 3, 1.0, 2)
        diff = np.abs(first.astype(int) - reference.astype(int))
        out["torchvision_decode_jpeg_cuda"] = {"images_per_s": round(len(jpegs) / t, 1),
                                               "max_abs_pixel_diff_vs_cv2": int(diff.max()),
                                               "mean_abs_pixel_diff_vs_cv2": round(float(diff.mean()), 3)}
    except Exception as exc:  # noqa: BLE001 - not installed or no CUDA decode in this build
        out["torchvision_decode_jpeg_cuda"] = f"not available ({type(exc).__name__}: {exc})"[:300]
    try:
        from nvidia import nvimgcodec

        decoder = nvimgcodec.Decoder()
        t = seconds_per_call(lambda: [torch.as_tensor(i, device=device) for i in decoder.decode(jpegs)],
                             device, 3, 1.0, 2)
        out["nvimgcodec"] = {"images_per_s": round(len(jpegs) / t, 1)}
    except Exception as exc:  # noqa: BLE001
        out["nvimgcodec"] = f"not available ({type(exc).__name__}: {exc})"[:300]
    try:
        from torchcodec.decoders import VideoDecoder

        path = str(SHARED / "media" / "video" / VIDEO)
        t0 = time.perf_counter()
        frames = VideoDecoder(path, device=str(device)).get_frames_in_range(0, 300).data
        synchronize(device)
        out["torchcodec_nvdec"] = {"frames": int(frames.shape[0]),
                                   "frames_per_s": round(frames.shape[0] / (time.perf_counter() - t0), 1)}
    except Exception as exc:  # noqa: BLE001
        out["torchcodec_nvdec"] = f"not available ({type(exc).__name__}: {exc})"[:300]
    return out


# ----------------------------------------------------------------------------------- CPU per core
def cpu_stage_costs(device: torch.device, args) -> dict:
    """Median one-core ms per sample photo of decode and letterbox resize (into the end-to-end
    bucket), and of host assembly of the device candidates of the ``candidates`` section's maps."""
    cv2.setNumThreads(1)
    dec, box = [], []
    for _, data in sample_images():
        t0 = time.perf_counter()
        img = decode(data)
        t1 = time.perf_counter()
        letterbox(img, args.e2e_bucket, 8)
        box.append(time.perf_counter() - t1)
        dec.append(t1 - t0)
    config = ParseConfig()
    cands = find_candidates_torch(*photo_maps(device, args.candidate_bucket, args.candidate_batch), config)
    asm = []
    for c in cands:
        t0 = time.process_time()
        assemble(c, config)
        asm.append(time.process_time() - t0)
    ms = lambda v: round(1000 * statistics.median(v), 3)  # noqa: E731
    return {"photos": len(dec), "decode_ms": ms(dec), "letterbox_ms": ms(box),
            "assemble_ms": ms(asm), "assembled_images": len(asm),
            "total_ms": round(ms(dec) + ms(box) + ms(asm), 3)}


def cores_needed(result: dict) -> dict:
    """CPU cores one GPU needs to be fed = images/s x CPU seconds per image (per-core stage costs)."""
    costs = result.get("cpu_stage_costs")
    if not isinstance(costs, dict):
        return {"note": "no per-core costs measured"}
    out = {"cores_for_13k_images_per_s": round(TARGET_IMAGES_PER_S * costs["total_ms"] / 1000, 1)}
    omz = result["networks"].get("omz-lightweight")
    best = [b["best"] for b in omz.values() if isinstance(b, dict) and "best" in b] if isinstance(omz, dict) else []
    if best:
        rate = max(r["images_per_s"] for r in best)
        out["best_network_only_images_per_s"] = rate
        out["cores_at_best_network_rate"] = round(rate * costs["total_ms"] / 1000, 1)
    return out


# ------------------------------------------------------------------------------------------- main
def print_table(result: dict) -> None:
    print(f"\n{result['measured_on']}\n")
    head = f"{'model':26} {'bucket':>8} {'batch':>5} {'prec':>5} {'variant':>22} {'img/s':>10} {'MB/img':>7}"
    print(head)
    print("-" * len(head))
    for name, buckets in result["networks"].items():
        if not isinstance(buckets, dict):
            print(f"{name:26} {buckets}")
            continue
        for bname, b in buckets.items():
            if not isinstance(b, dict):
                continue
            for r in b.get("rows", []):
                variant = ("compile+graphs" if r.get("compile") and r.get("cuda_graphs") else
                           "compile" if r.get("compile") else "cuda graphs" if r.get("cuda_graphs") else
                           "channels_last" if r.get("channels_last", True) else "NCHW")
                value = r.get("images_per_s") or r.get("error", r.get("skipped", ""))[:40]
                print(f"{name:26} {bname:>8} {r.get('batch', ''):>5} {r.get('precision', ''):>5} {variant:>22} "
                      f"{value:>10} {r.get('peak_memory_mb_per_image', '-'):>7}")
            ceilings = {k[len('memory_bound_ceiling_images_per_s_'):]: v for k, v in b.items()
                        if k.startswith("memory_bound_ceiling")}
            print(f"{'':26} {bname:>8} GFLOP/img {b.get('gflops_per_image')}  bytes/img (fp16, fused) "
                  f"{b['bytes_per_image']['conv_fused_bytes_fp16'] / 1e6:.1f} MB  ceiling {ceilings or 'n/a (no GPU)'}")
    for key in ("candidates", "precision_ap", "end_to_end", "graph_variants", "cpu_stage_costs", "cpu_cores"):
        print(f"\n{key}: {json.dumps(result.get(key), indent=1)}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="the prepared run: omz-lightweight, a few settings "
                    "(<= 8 min on an H100/H200, < 2 min with --device cpu)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--models", nargs="+", default=None, help="registry names (quick: omz-lightweight; else all)")
    ap.add_argument("--buckets", nargs="+", type=bucket_wh, default=None,
                    help="padded canvases WxH for the network sweep (default: each model's native size)")
    ap.add_argument("--batch-sizes", nargs="+", type=int, default=None)
    ap.add_argument("--precisions", nargs="+", choices=sorted(AUTOCAST), default=None)
    ap.add_argument("--no-variants", dest="variants", action="store_false",
                    help="skip the torch.compile / CUDA-graph variants")
    ap.add_argument("--min-iters", type=int, default=None, help="timed calls per configuration (at least)")
    ap.add_argument("--min-seconds", type=float, default=None, help="timed seconds per configuration (at least)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed calls before timing (x2 with torch.compile)")
    ap.add_argument("--decode-workers", type=int, default=os.cpu_count(), help="decode + resize threads")
    ap.add_argument("--assembly-workers", type=int, default=max(1, (os.cpu_count() or 2) // 2),
                    help="processes running pipeline.parsing.assemble on the device candidates")
    ap.add_argument("--in-flight", type=int, default=3, help="batches decoded ahead of the network")
    ap.add_argument("--budget-s", type=float, default=None, help="stop starting sections after this many seconds")
    ap.add_argument("--cpu-threads", type=int, default=1,
                    help="torch threads for a --device cpu run (default 1: per-core figures; on a shared "
                         "machine OpenMP threads waiting on each other made small ops ~10x slower)")
    ap.add_argument("--output", default=str(REPO / "bench" / "results" / "gpu_throughput.json"))
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda but torch sees no CUDA device; use --device cpu")
    cuda = device.type == "cuda"
    if not cuda:
        torch.set_num_threads(args.cpu_threads)
    else:
        torch.backends.cudnn.benchmark = True  # fixed bucket shapes: let cuDNN pick its fastest kernels
    defaults = {  # (quick on CUDA, quick on CPU, full on CUDA, full on CPU)
        "models": (["omz-lightweight"], ["omz-lightweight"], None, None),
        "buckets": ([(456, 256), (656, 368)], [(456, 256)], [(456, 256), (656, 368), (1312, 736)], [(456, 256)]),
        "batch_sizes": ([64, 256], [1], [1, 16, 64, 128, 256, 512], [1, 4]),
        "precisions": (["fp32", "fp16", "bf16"], ["fp32"], ["fp32", "fp16", "bf16"], ["fp32", "bf16"]),
        "min_iters": (10, 1, 20, 3), "min_seconds": (1.0, 0.0, 3.0, 1.0), "warmup": (3, 1, 5, 1),
        "budget_s": (400, 85, 3000, 1800),
    }
    pick = (0 if cuda else 1) if args.quick else (2 if cuda else 3)
    for key, values in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, values[pick])
    args.candidate_bucket, args.candidate_batch = ((656, 368), 16) if cuda else ((456, 256), 4)
    args.e2e_bucket, args.e2e_batch = ((656, 368), 64) if cuda else ((456, 256), 4)
    args.e2e_images = 4096 if cuda else 4
    args.video_frames = 1024 if cuda else 4
    budget = Budget(args.budget_s)

    result = {
        "measured_on": (f"GPU: {torch.cuda.get_device_name(device)}" if cuda else
                        "CPU torch, no GPU: every figure below is a CPU figure (the GPU path's code run on CPU); "
                        "no GPU figure is measured by this run"),
        "machine": {"device": str(device), "gpu": torch.cuda.get_device_name(device) if cuda else None,
                    "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
                    "torch": torch.__version__, "cuda": torch.version.cuda, "torch_threads": torch.get_num_threads(),
                    "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
                    "load_average_1m_at_start": round(os.getloadavg()[0], 2)},
        "settings": {k: v for k, v in vars(args).items() if k != "output"},
        "gpu_specs": GPU_SPECS,
        "networks": {},
    }
    t0 = time.perf_counter()
    for name in args.models or list_models():
        print(f"{name}:", file=sys.stderr)
        section(result["networks"], name, budget, measure_network, name, device, args, budget)
    section(result, "candidates", budget, measure_candidates, device, args)
    section(result, "cpu_stage_costs", budget, cpu_stage_costs, device, args, min_left_s=3)
    section(result, "precision_ap", budget, measure_precision_ap, device, args)
    section(result, "end_to_end", budget, measure_end_to_end, device, args, end_to_end_precision(result))
    section(result, "graph_variants", budget, measure_graph_variants, result["networks"], device, args, budget,
            min_left_s=30)
    result["cpu_cores"] = cores_needed(result)
    e2e = result.get("end_to_end")
    if isinstance(e2e, dict) and isinstance(e2e.get("photos_cpu_decode"), dict):
        rate = result["cpu_cores"].get("best_network_only_images_per_s")
        if rate:
            e2e["photos_device_path_over_network_only"] = round(
                e2e["photos_cpu_decode"]["device_path"]["images_per_s"] / rate, 3)
    result["wall_s"] = round(time.perf_counter() - t0, 1)
    print_table(result)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=1, default=str))
    print(f"\nwrote {args.output} ({result['wall_s']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
