"""Images/s per GPU for every registered network, the share of the GPU's peak FLOP/s that reaches,
and how many CPU cores one GPU keeps busy with decoding, preprocessing and PAF parsing.

Per model, at its native input size (registry metadata ``native_input_wh``):

- FLOPs per image, counted with torch.utils.flop_counter.FlopCounterMode (convolutions and matmuls,
  2 FLOPs per multiply-add; element-wise ops are not counted).
- CPU (always measured, this machine, one torch thread = per-core cost): fp32 network ms/image
  (batch 1), and per frame of the sample
  photos in ../shared/media/images: JPEG decode ms, preprocess ms (resize/pad/normalise, what the
  job's decode tasks do) and parse ms (find_candidates + assemble on the network's own maps).
- GPU (only when torch sees CUDA): network-only images/s for each batch size x precision
  (fp32/fp16/bf16 autocast, channels_last), then at the best batch size the variants
  channels_last off, torch.compile, CUDA graphs, compile + CUDA graphs; end-to-end images/s
  (host float32 batch -> H2D -> network -> maps D2H) from pageable memory (what PoseNetRunner does)
  and from pinned buffers with non_blocking copies. achieved FLOP/s / the GPU's dense peak
  (PEAK_TFLOPS) and cores per GPU = images/s x CPU ms per frame.

Without a GPU every GPU column says "not measured (no GPU)". Writes bench/results/gpu_throughput.json.

    python bench/gpu_throughput.py [--models omz-lightweight ...] [--batch-sizes 1 8 32 64]
                                   [--precisions fp32 fp16 bf16] [--iters 50] [--no-variants]
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

NOT_MEASURED = "not measured (no GPU)"

#: Dense peak TFLOP/s (no 2:4 sparsity) from NVIDIA datasheets (A10G: AWS's variant, per published
#: spec comparisons). "tf32" is the tensor-core rate fp32 convolutions get when cuDNN may use TF32
#: (PyTorch's default for convolutions); "fp32" is the CUDA-core rate. None: no such tensor-core mode.
#: Matched against torch.cuda.get_device_name() in this order (first substring hit wins).
PEAK_TFLOPS: dict[str, dict[str, float | None]] = {
    "H200":      {"fp32": 67.0, "tf32": 494.7, "fp16": 989.4, "bf16": 989.4},
    "H100 PCIe": {"fp32": 51.2, "tf32": 378.0, "fp16": 756.0, "bf16": 756.0},
    "H100":      {"fp32": 67.0, "tf32": 494.7, "fp16": 989.4, "bf16": 989.4},   # SXM
    "A100":      {"fp32": 19.5, "tf32": 156.0, "fp16": 312.0, "bf16": 312.0},
    "L40S":      {"fp32": 91.6, "tf32": 183.0, "fp16": 362.0, "bf16": 362.0},
    "A10G":      {"fp32": 31.5, "tf32": 35.0, "fp16": 70.0, "bf16": 70.0},
    "A10":       {"fp32": 31.2, "tf32": 62.5, "fp16": 125.0, "bf16": 125.0},
    "L4":        {"fp32": 30.3, "tf32": 60.0, "fp16": 121.0, "bf16": 121.0},
    "T4":        {"fp32": 8.1, "tf32": None, "fp16": 65.0, "bf16": None},
    "V100":      {"fp32": 15.7, "tf32": None, "fp16": 125.0, "bf16": None},
}
AUTOCAST = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


# ------------------------------------------------------------------------------------------ model
def build_model(name: str) -> tuple[torch.nn.Module, str]:
    """(network in eval mode on CPU, where its weights came from). A registered network whose weights
    are not in the model directory is built with random weights when its architecture allows it
    (speed and FLOPs do not depend on weight values); otherwise WeightsError propagates."""
    from pipeline.models import WeightsError, get, load_model

    try:
        return load_model(name, device="cpu"), "registry weights"
    except WeightsError:
        if get(name).architecture != "cmu_vgg19":
            raise
        from pipeline.models.cmu_vgg19 import CmuVgg19PafNet

        return CmuVgg19PafNet().eval(), "random weights (files not in the model dir; FLOPs/speed only)"


def native_size(name: str) -> tuple[int, int]:
    """(width, height) in pixels the network is run at natively."""
    from pipeline.models import get

    entry = get(name)
    wh = entry.metadata.get("native_input_wh") or entry.preprocessing.input_size
    return int(wh[0]), int(wh[1])


def native_input(name: str, batch: int) -> np.ndarray:
    """float32 [batch, 3, H, W]: a real photo resized to the native size, preprocessed as the job does."""
    from pipeline.models import get
    from pipeline.models.inference import preprocess

    w, h = native_size(name)
    entry = get(name)
    img = cv2.resize(cv2.imread(str(SHARED / "media" / "images" / "p3.jpg")), (w, h), interpolation=cv2.INTER_AREA)
    x = preprocess([img], entry.preprocessing, target_height=h)[0].input
    assert x.shape == (3, h, w), (name, x.shape)
    return np.ascontiguousarray(np.repeat(x[None], batch, axis=0))


@torch.no_grad()
def count_flops(model: torch.nn.Module, w: int, h: int) -> tuple[float, float]:
    """(FLOPs per image at w x h, seconds of that one fp32 CPU forward)."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.zeros(1, 3, h, w)
    counter = FlopCounterMode(display=False)
    t0 = time.perf_counter()
    with counter:
        model(x)
    return float(counter.get_total_flops()), time.perf_counter() - t0


# -------------------------------------------------------------------------------------- CPU side
@torch.no_grad()
def cpu_network_ms(model: torch.nn.Module, x: np.ndarray, reps: int) -> float:
    """Median fp32 CPU ms per forward of ``x`` (one image)."""
    t = torch.from_numpy(x)
    model(t)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        model(t)
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def cpu_frame_costs(name: str, image_paths: list[Path]) -> dict:
    """Median CPU ms per frame for decode (cv2.imdecode), preprocess and parse, on real photos.

    Parsing runs on the maps this network produces for each photo (the job's default ParseConfig).
    """
    from pipeline.models import get
    from pipeline.models.inference import PoseNetRunner, prepare_passes
    from pipeline.parsing import ParseConfig, assemble, find_candidates

    entry = get(name)
    runner = PoseNetRunner(name, device="cpu", batch_size=1)
    cfg = ParseConfig()
    decode, prep, parse, people = [], [], [], 0
    for path in image_paths:
        data = path.read_bytes()
        t0 = time.perf_counter()
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        t1 = time.perf_counter()
        passes = prepare_passes([img], entry.preprocessing)
        t2 = time.perf_counter()
        fields = runner.infer_prepared(passes)[0]
        t3 = time.perf_counter()
        poses = assemble(find_candidates(fields, cfg), cfg)
        t4 = time.perf_counter()
        decode.append(t1 - t0)
        prep.append(t2 - t1)
        parse.append(t4 - t3)
        people += len(poses.scores)
    ms = lambda v: round(1000 * statistics.median(v), 3)  # noqa: E731
    return {"frames": len(image_paths), "people_found": people, "decode_ms": ms(decode),
            "preprocess_ms": ms(prep), "parse_ms": ms(parse),
            "parse_ms_mean": round(1000 * statistics.fmean(parse), 3)}


# -------------------------------------------------------------------------------------- GPU side
def gpu_peak(device_name: str, precision: str) -> tuple[float | None, str]:
    """(dense peak TFLOP/s for ``precision`` on this GPU or None if unknown, the PEAK_TFLOPS key used)."""
    for key, peaks in PEAK_TFLOPS.items():
        if key in device_name:
            mode = precision
            if precision == "fp32" and torch.backends.cudnn.allow_tf32 and peaks["tf32"] is not None:
                mode = "tf32"
            return peaks[mode], f"{key} {mode}"
    return None, "unknown GPU"


def _cuda_seconds_per_call(fn, iters: int, warmup: int) -> float:
    """Mean GPU seconds per ``fn()`` call, timed with CUDA events after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters):
        fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / 1000 / iters


def gpu_network(model: torch.nn.Module, x: np.ndarray, precision: str, channels_last: bool,
                compile_mode: str | None, cuda_graphs: bool, iters: int) -> float:
    """Network-only images/s on the GPU: input already on the device, outputs left there.

    compile_mode: None (eager) or a torch.compile mode; cuda_graphs: capture the forward in a CUDA
    graph (with torch.compile: mode "reduce-overhead", which captures graphs itself).
    """
    dev = torch.device("cuda")
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = model.to(dev).to(memory_format=fmt)
    static_in = torch.from_numpy(x).to(dev).contiguous(memory_format=fmt)
    dtype = AUTOCAST[precision]
    if compile_mode is not None:
        net = torch.compile(net, mode="reduce-overhead" if cuda_graphs else compile_mode)

    def forward():
        with torch.no_grad(), torch.autocast("cuda", dtype=dtype, enabled=dtype != torch.float32,
                                             cache_enabled=False):
            return net(static_in)

    step = forward
    if cuda_graphs and compile_mode is None:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                forward()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            forward()
        step = graph.replay
    warmup = 10 if compile_mode is None else 20  # compiling / autotuning happens in the first calls
    return x.shape[0] / _cuda_seconds_per_call(step, iters, warmup)


def gpu_end_to_end(model: torch.nn.Module, x: np.ndarray, precision: str, channels_last: bool,
                   pinned: bool, iters: int) -> float:
    """Images/s from a host float32 batch to host maps: H2D copy, network, D2H copy of both outputs.

    pinned=False does what PoseNetRunner.forward_batch does (torch.from_numpy -> .to(device) ->
    .cpu()); pinned=True copies through preallocated page-locked buffers with non_blocking copies.
    """
    dev = torch.device("cuda")
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = model.to(dev).to(memory_format=fmt)
    dtype = AUTOCAST[precision]

    def run(inp: torch.Tensor):
        with torch.no_grad(), torch.autocast("cuda", dtype=dtype, enabled=dtype != torch.float32):
            return net(inp.contiguous(memory_format=fmt))

    if pinned:
        host_in = torch.from_numpy(x).pin_memory()
        dev_in = torch.empty(host_in.shape, device=dev)
        heat0, paf0 = run(dev_in.copy_(host_in))
        host_heat = torch.empty(heat0.shape, dtype=torch.float32, pin_memory=True)
        host_paf = torch.empty(paf0.shape, dtype=torch.float32, pin_memory=True)

        def step():
            dev_in.copy_(host_in, non_blocking=True)
            heat, paf = run(dev_in)
            host_heat.copy_(heat, non_blocking=True)
            host_paf.copy_(paf, non_blocking=True)
            torch.cuda.current_stream().synchronize()
            return host_heat.numpy(), host_paf.numpy()
    else:
        def step():
            heat, paf = run(torch.from_numpy(x).to(dev, non_blocking=True))
            return heat.float().cpu().numpy(), paf.float().cpu().numpy()

    for _ in range(5):
        step()
    t0 = time.perf_counter()
    for _ in range(iters):
        step()
    return x.shape[0] * iters / (time.perf_counter() - t0)


def gpu_rows(name: str, model: torch.nn.Module, flops: float, args) -> dict:
    """All GPU measurements of one model (network-only sweep, variants, end-to-end)."""
    from pipeline.models import get

    device_name = torch.cuda.get_device_name()
    batches = args.batch_sizes if get(name).batch_independent else [1]

    def row(kind, batch, precision, channels_last=True, compile_mode=None, cuda_graphs=False, pinned=None):
        x = native_input(name, batch)
        try:
            if kind == "network":
                ips = gpu_network(model, x, precision, channels_last, compile_mode, cuda_graphs, args.iters)
            else:
                ips = gpu_end_to_end(model, x, precision, channels_last, pinned, args.iters)
        except Exception as exc:  # noqa: BLE001 - e.g. out of memory at a large batch: record, go on
            return {"kind": kind, "batch": batch, "precision": precision, "error": f"{type(exc).__name__}: {exc}"}
        finally:
            torch.cuda.empty_cache()
        peak, peak_key = gpu_peak(device_name, precision)
        achieved = ips * flops / 1e12
        return {"kind": kind, "batch": batch, "precision": precision, "channels_last": channels_last,
                "compile": compile_mode, "cuda_graphs": cuda_graphs, "pinned": pinned,
                "images_per_s": round(ips, 1), "achieved_tflops": round(achieved, 2), "peak": peak_key,
                "fraction_of_peak": None if not peak else round(achieved / peak, 4)}

    rows = [row("network", b, p) for p in args.precisions for b in batches]
    ok = [r for r in rows if "images_per_s" in r]
    if ok and args.variants:
        best = max(ok, key=lambda r: r["images_per_s"])
        b, p = best["batch"], best["precision"]
        rows += [row("network", b, p, channels_last=False),
                 row("network", b, p, compile_mode="default"),
                 row("network", b, p, cuda_graphs=True),
                 row("network", b, p, compile_mode="default", cuda_graphs=True)]
    for p in args.precisions:
        b = max((r for r in ok if r["precision"] == p), key=lambda r: r["images_per_s"], default={"batch": batches[0]})["batch"]
        rows += [row("end_to_end", b, p, pinned=False), row("end_to_end", b, p, pinned=True)]
    return {"device": device_name, "rows": rows}


# ------------------------------------------------------------------------------------------- main
def measure_model(name: str, args, image_paths: list[Path]) -> dict:
    from pipeline.models import get

    entry = get(name)
    w, h = native_size(name)
    model, weights = build_model(name)
    flops, _ = count_flops(model, w, h)
    out = {"native_input_wh": [w, h], "weights": weights, "batch_independent": entry.batch_independent,
           "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 3),
           "gflops_per_image": round(flops / 1e9, 3),
           "registry_gflops_note": {k: v for k, v in entry.metadata.items() if "flops" in k}}
    out["cpu"] = {"network_ms_fp32_batch1": round(cpu_network_ms(model, native_input(name, 1), args.cpu_reps), 2)}
    if weights == "registry weights":
        out["cpu"].update(cpu_frame_costs(name, image_paths))
    else:
        out["cpu"]["frame_costs"] = "not measured (needs the real weights: parse cost depends on the maps)"
    per_frame_ms = out["cpu"].get("parse_ms")
    if per_frame_ms is not None:
        # Cores that keep up with 1000 images/s = CPU seconds per 1000 frames.
        out["cpu"]["parser_cores_per_1000_images_per_s"] = round(per_frame_ms, 2)
        out["cpu"]["decode_preprocess_parse_cores_per_1000_images_per_s"] = round(
            per_frame_ms + out["cpu"]["decode_ms"] + out["cpu"]["preprocess_ms"], 2)
    if torch.cuda.is_available():
        out["gpu"] = gpu_rows(name, model, flops, args)
        best = max((r for r in out["gpu"]["rows"] if r.get("kind") == "network" and "images_per_s" in r),
                   key=lambda r: r["images_per_s"], default=None)
        e2e = max((r for r in out["gpu"]["rows"] if r.get("kind") == "end_to_end" and "images_per_s" in r),
                  key=lambda r: r["images_per_s"], default=None)
        out["gpu"]["best_network"], out["gpu"]["best_end_to_end"] = best, e2e
        if per_frame_ms is not None and e2e is not None:
            out["gpu"]["parser_cores_per_gpu"] = round(e2e["images_per_s"] * per_frame_ms / 1000, 2)
            out["gpu"]["cpu_cores_per_gpu_decode_preprocess_parse"] = round(
                e2e["images_per_s"] * out["cpu"]["decode_preprocess_parse_cores_per_1000_images_per_s"] / 1000, 2)
    else:
        out["gpu"] = NOT_MEASURED
    return out


def print_table(result: dict) -> None:
    gpu = result["machine"]["gpu"] or NOT_MEASURED
    m = result["machine"]
    print(f"\nGPU: {gpu}    CPU: {m['cpu']} ({m['cpu_count']} cores, torch threads {m['torch_threads']}, "
          f"load average {m['load_average_1m_at_start']} at start)\n")
    head = (f"{'model':26} {'W x H':>9} {'GFLOP/img':>9} {'CPU net ms':>10} {'parse ms':>8} {'dec+prep ms':>11} "
            f"{'parse cores/1k img/s':>20} | {'GPU net img/s':>22} {'%peak':>7} {'e2e img/s':>10} {'parser cores/GPU':>22}")
    print(head)
    print("-" * len(head))
    for name, m in result["models"].items():
        cpu = m["cpu"]
        dp = f"{cpu['decode_ms'] + cpu['preprocess_ms']:.1f}" if "decode_ms" in cpu else "-"
        parse = f"{cpu['parse_ms']:.1f}" if "parse_ms" in cpu else "-"
        cores = f"{cpu['parser_cores_per_1000_images_per_s']:.1f}" if "parse_ms" in cpu else "-"
        if isinstance(m["gpu"], dict) and m["gpu"].get("best_network"):
            b, e = m["gpu"]["best_network"], m["gpu"]["best_end_to_end"]
            g = (f"{b['images_per_s']:>10.0f} (b{b['batch']} {b['precision']})"[:22],
                 f"{100 * b['fraction_of_peak']:.1f}" if b["fraction_of_peak"] else "?",
                 f"{e['images_per_s']:.0f}" if e else "-", str(m["gpu"].get("parser_cores_per_gpu", "-")))
        else:
            g = (NOT_MEASURED, "-", "-", NOT_MEASURED)
        print(f"{name:26} {m['native_input_wh'][0]:>4}x{m['native_input_wh'][1]:<4} {m['gflops_per_image']:>9.2f} "
              f"{cpu['network_ms_fp32_batch1']:>10.1f} {parse:>8} {dp:>11} {cores:>20} | "
              f"{g[0]:>22} {g[1]:>7} {g[2]:>10} {g[3]:>22}")
    print("\nparse cores per 1000 images/s = parse ms/frame on this CPU; cores one GPU needs = its images/s x that / 1000."
          "\nGFLOP/img: FlopCounterMode (conv/matmul, 2 FLOPs per multiply-add).")


def main(argv=None) -> int:
    from pipeline.models import list_models

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=None, help="registry names (default: all registered)")
    ap.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 8, 32, 64])
    ap.add_argument("--precisions", nargs="+", choices=sorted(AUTOCAST), default=["fp32", "fp16", "bf16"])
    ap.add_argument("--iters", type=int, default=50, help="timed GPU iterations per configuration")
    ap.add_argument("--cpu-reps", type=int, default=2, help="timed CPU forwards per model")
    ap.add_argument("--cpu-threads", type=int, default=1,
                    help="torch threads for the CPU figures (default 1: per-core costs, what core counts need)")
    ap.add_argument("--no-variants", dest="variants", action="store_false",
                    help="skip channels_last-off / torch.compile / CUDA-graph variants")
    ap.add_argument("--output", default=str(REPO / "bench" / "results" / "gpu_throughput.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.cpu_threads)

    image_paths = sorted(p for p in (SHARED / "media" / "images").iterdir() if p.suffix.lower() in (".jpg", ".png"))
    result = {
        "machine": {"cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
                    "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                    "load_average_1m_at_start": round(os.getloadavg()[0], 2),
                    "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None},
        "gpu_measured": torch.cuda.is_available(),
        "peak_tflops_dense": PEAK_TFLOPS,
        "settings": {"batch_sizes": args.batch_sizes, "precisions": args.precisions, "iters": args.iters,
                     "images": [p.name for p in image_paths]},
        "models": {},
    }
    for name in args.models or list_models():
        t0 = time.perf_counter()
        result["models"][name] = measure_model(name, args, image_paths)
        print(f"{name}: measured in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    print_table(result)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=1))
    print(f"\nwrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
