"""CPU inference side by side: the reference CPU pipeline vs posepipe's backends (issue 12).

Default network omz-lightweight (Intel human-pose-estimation-0001, FP16-INT8 IR), input height 368,
the sample photos of ../shared/media/images. In one run, alternating rounds, medians:

(a) reference: what a CPU user would pick today -- the OpenVINO runtime with Open Model Zoo's
    published OpenPose model wrapper and decoder (``openmodelzoo-modelapi``, as in OMZ's
    human_pose_estimation_demo), height 368, one wrapper per image aspect (its input is reshaped to
    the aspect, as the demo does per stream). Runtime defaults (the plugin picks its inference
    precision) and, for the like-for-like network figure, INFERENCE_PRECISION_HINT f32. Not a
    posepipe dependency; install it into a scratch folder (its pins, numpy<=1.23 and scipy<1.9, are
    not installed: ``--no-deps``; it imports the removed ``openvino.runtime``, aliased here to the
    same ``openvino`` package, so both sides run the same runtime in the same process):

        python -m pip install --no-deps --target /tmp/bench-venv openmodelzoo-modelapi==2022.3.0

    and pass ``--reference-path /tmp/bench-venv`` (the default). Without it, (a) is skipped with a
    message and ratios to (a) are left out.
(b) posepipe's network: ``PoseNetRunner.forward_batch`` on posepipe's preprocessed inputs (shape
    bucketed), backends torch and openvino, 1 and 2 threads, batch 1; openvino also on the
    unbucketed inputs (the reference's shapes); the parser vs OMZ's decoder; start-up (runner
    construction: weights, read, first compile) with a cold and a warm cache.
(c) whole run: ``posepipe run --backend B --num-cpus 2`` over ``--photos`` photos (the sample photos
    repeated at 5 sizes into a temporary folder, never into the repo), with the default executor
    (auto: inline for 60 photos) and with ``--executor ray``, as a subprocess including
    start-up, against the reference pipeline over the same photos, also a subprocess
    (``--reference-run``), both with 2 threads.

    python bench/cpu_backends.py [--rounds 3] [--photos 60] [--runs openvino torch] [--executors auto ray] [--whole-rounds 3]
        [--no-whole-run] [--no-network]

Prints Markdown tables and writes bench/results/cpu_backends.json. Figures from a shared machine are
noisy: compare the ratios measured in the same run.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("POSEPIPE_SHARED_DIR", REPO.parent / "shared"))
os.environ.setdefault("POSEPIPE_MODEL_DIR", str(SHARED / "models"))
MODEL = "omz-lightweight"
HEIGHT = 368
IR_XML = SHARED / "models" / "omz-human-pose-estimation-0001-int8" / "human-pose-estimation-0001.xml"
INSTALL = "python -m pip install --no-deps --target /tmp/bench-venv openmodelzoo-modelapi==2022.3.0"
SIZES = (1.0, 0.85, 0.7, 0.55, 1.15)  # the sample photos at these scales make up the whole-run folder


# ---- (a) the reference: OpenVINO + Open Model Zoo's OpenPose wrapper ----------------------------------------

def import_reference(path: str):
    """The OMZ model-api ``(OpenPose, OpenvinoAdapter)`` classes from ``path``, or None if absent."""
    if path and Path(path).is_dir() and path not in sys.path:
        sys.path.append(path)
    import openvino
    import openvino.opset8

    sys.modules.setdefault("openvino.runtime", openvino)  # model-api 2022.3 predates its removal
    sys.modules.setdefault("openvino.runtime.opset8", openvino.opset8)
    openvino.__path__ = __import__("pkgutil").extend_path(openvino.__path__, "openvino")
    try:
        from openvino.model_zoo.model_api.adapters import OpenvinoAdapter
        from openvino.model_zoo.model_api.models import OpenPose
    except ImportError:
        return None
    return OpenPose, OpenvinoAdapter


class ReferencePipeline:
    """OMZ's OpenPose wrapper (preprocess, infer, NMS + decoder) with one reshaped model per aspect.

    threads: INFERENCE_NUM_THREADS; f32: pin INFERENCE_PRECISION_HINT to f32 (else runtime default)."""

    def __init__(self, classes, threads: int, f32: bool = False):
        import openvino

        self.OpenPose, self.Adapter = classes
        self.core = openvino.Core()
        self.config = {"INFERENCE_NUM_THREADS": str(threads), "PERFORMANCE_HINT": "LATENCY"}
        if f32:
            self.config["INFERENCE_PRECISION_HINT"] = "f32"
        self.models: dict[int, object] = {}

    def model_for(self, img: np.ndarray):
        """The wrapper for this image's input width (built and compiled on first use)."""
        width = -(-round(HEIGHT * img.shape[1] / img.shape[0]) // 8) * 8
        if width not in self.models:
            adapter = self.Adapter(self.core, str(IR_XML), device="CPU", plugin_config=self.config,
                                   max_num_requests=1)
            self.models[width] = self.OpenPose(adapter, {"target_size": HEIGHT, "aspect_ratio": width / HEIGHT,
                                                         "confidence_threshold": 0.1}, preload=True)
        return self.models[width]

    def __call__(self, img: np.ndarray):
        """(poses [P, 18, 3], scores [P]) in original pixels."""
        model = self.model_for(img)
        inputs, meta = model.preprocess(img)
        return model.postprocess(model.infer_sync(inputs), meta)


def reference_run(folder: str, reference_path: str, threads: int) -> None:
    """The whole reference pipeline over every image in ``folder`` (for a timed subprocess)."""
    pipeline = ReferencePipeline(import_reference(reference_path), threads)
    people = 0
    for path in sorted(Path(folder).iterdir()):
        poses, _ = pipeline(cv2.imread(str(path)))
        people += len(poses)
    print(json.dumps({"people": people}))


# ---- helpers -------------------------------------------------------------------------------------------------

def photos() -> tuple[list[str], list[np.ndarray]]:
    paths = sorted((SHARED / "media" / "images").iterdir())
    return [p.name for p in paths], [cv2.imread(str(p)) for p in paths]


def median_ms_per_image(rounds: list[float], n: int) -> float:
    return round(1000 * statistics.median(rounds) / n, 2)


def make_whole_run_folder(target: Path, count: int) -> None:
    names, images = photos()
    target.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        img, scale = images[i % len(images)], SIZES[(i // len(images)) % len(SIZES)]
        if scale != 1.0:
            img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(target / f"{i:03d}_{Path(names[i % len(names)]).stem}.jpg"), img)


def timed_subprocess(cmd: list[str], env: dict | None = None) -> tuple[float, str]:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return wall, done.stdout


# ---- the benchmark ---------------------------------------------------------------------------------------------

def network_figures(args, classes, cache: Path) -> tuple[list[dict], dict]:
    """(b) and the reference's network/decoder figures, alternating rounds; plus start-up times."""
    from pipeline.models.inference import PoseNetRunner
    from pipeline.models.preprocessing import prepare_passes
    from pipeline.parsing import ParseConfig, parse

    names, images = photos()
    n = len(images)
    configs = {}  # label -> callable(i) running image i once
    startup = {}
    for backend in ("openvino", "torch"):
        for threads in (1, 2):
            t0 = time.perf_counter()  # start-up = runner construction + the first image (first compile)
            runner = PoseNetRunner(MODEL, backend=backend, num_threads=threads,
                                   cache_dir=cache / f"cold-{threads}" if backend == "openvino" else None)
            first_input = runner.prepare(images[:1])
            runner.infer_prepared(first_input)
            first = " (includes importing torch)" if backend == "torch" and threads == 1 else ""
            cold = ", cold cache" if backend == "openvino" else first
            startup[f"{backend}, {threads} thread(s){cold}"] = round(time.perf_counter() - t0, 3)
            if backend == "openvino":
                t0 = time.perf_counter()
                runner = PoseNetRunner(MODEL, backend=backend, num_threads=threads, cache_dir=cache / f"cold-{threads}")
                runner.infer_prepared(first_input)
                startup[f"{backend}, {threads} thread(s), warm cache"] = round(time.perf_counter() - t0, 3)
            bucketed = [p[0][0].pixels[None] for p in (runner.prepare([img]) for img in images)]
            plain = [p[0][0].pixels[None] for p in (prepare_passes([img], runner.entry.preprocessing) for img in images)]

            def run(i, runner=runner, inputs=bucketed, threads=threads):
                if runner.backend == "torch":  # torch threads are per process: set them for this call
                    import torch

                    torch.set_num_threads(threads)
                runner.forward_batch(inputs[i])

            configs[f"posepipe {backend}, {threads} thread(s)"] = run
            if backend == "openvino":
                configs[f"posepipe {backend} unbucketed, {threads} thread(s)"] = (
                    lambda i, run=run, inputs=plain: run(i, inputs=inputs))
    fields = PoseNetRunner(MODEL, backend="openvino", num_threads=1, cache_dir=cache / "cold-1")(images)
    configs["posepipe parser (greedy)"] = lambda i: parse(fields[i], ParseConfig())
    if classes is not None:
        for threads in (1, 2):
            for f32 in (False, True):
                t0 = time.perf_counter()
                ref = ReferencePipeline(classes, threads, f32)
                ref(images[0])
                startup[f"reference{' f32' if f32 else ''}, {threads} thread(s), first model + image"] = round(
                    time.perf_counter() - t0, 3)
                prepared = []
                for img in images:
                    model = ref.model_for(img)
                    prepared.append((model, *model.preprocess(img)))
                configs[f"reference{' f32' if f32 else ''} network, {threads} thread(s)"] = (
                    lambda i, prepared=prepared: prepared[i][0].infer_sync(prepared[i][1]))
                if threads == 1 and not f32:
                    raw = [(model, model.infer_sync(inputs), meta) for model, inputs, meta in prepared]
                    configs["reference decoder (OMZ OpenPoseDecoder + NMS)"] = (
                        lambda i, raw=raw: raw[i][0].postprocess(raw[i][1], raw[i][2]))
    # Every round runs image i on every configuration before image i + 1 (rotating which goes first),
    # so the load of a shared machine falls on all configurations alike.
    times: dict[str, list[float]] = {k: [] for k in configs}
    labels = list(configs)
    for r in range(args.rounds + 1):  # round 0 warms up (first inference of each shape)
        spent = dict.fromkeys(labels, 0.0)
        for i in range(n):
            k = (r * n + i) % len(labels)
            for label in labels[k:] + labels[:k]:
                t0 = time.perf_counter()
                configs[label](i)
                spent[label] += time.perf_counter() - t0
        if r:
            for label in labels:
                times[label].append(spent[label])
        print(f"  round {r}/{args.rounds} done{' (warm-up)' if not r else ''}", file=sys.stderr)
    rows = [{"what": label, "ms_per_image": median_ms_per_image(t, n),
             "images_per_s": round(n / statistics.median(t), 2), "rounds_s": [round(x, 3) for x in t]}
            for label, t in times.items()]
    return rows, startup


def whole_runs(args, reference_ok: bool) -> list[dict]:
    """(c): posepipe run per backend and executor and the reference pipeline, as subprocesses over the
    same photos, ``--whole-rounds`` alternating rounds (the order rotates each round), medians."""
    with tempfile.TemporaryDirectory(prefix="posepipe-cpu-bench-") as tmp:
        folder = Path(tmp) / "photos"
        make_whole_run_folder(folder, args.photos)
        env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
        posepipe = str(Path(sys.executable).with_name("posepipe"))

        def posepipe_run(backend: str, flags: list[str]) -> tuple[float, dict]:
            out = Path(tmp) / "out"
            wall, _ = timed_subprocess([posepipe, "run", "--input", str(folder), "--output", str(out),
                                        "--backend", backend, "--num-cpus", "2", "--no-progress", *flags], env)
            summary = json.loads((out / "_manifest.json").read_text()).get("summary", {})
            shutil.rmtree(out, ignore_errors=True)
            return wall, {"executor": summary.get("executor"), "people": summary.get("people")}

        def run_reference() -> tuple[float, dict]:
            wall, stdout = timed_subprocess([sys.executable, __file__, "--reference-run", str(folder),
                                             "--reference-path", args.reference_path, "--threads", "2"], env)
            return wall, {"people": json.loads(stdout.strip().splitlines()[-1])["people"]}

        configs: dict[str, Callable] = {}
        for backend in args.runs:
            for executor in args.executors:
                flags = [] if executor == "auto" else ["--executor", executor]
                what = f"posepipe run --backend {backend} --num-cpus 2 {' '.join(flags)}".strip()
                configs[what] = functools.partial(posepipe_run, backend, flags)
        if reference_ok:
            configs["reference pipeline, 2 threads"] = run_reference
        labels, walls, info = list(configs), {k: [] for k in configs}, {}
        for r in range(args.whole_rounds):
            for label in labels[r % len(labels):] + labels[:r % len(labels)]:
                wall, info[label] = configs[label]()
                walls[label].append(wall)
                print(f"  whole run {r + 1}/{args.whole_rounds} {label}: {wall:.1f} s", file=sys.stderr)
    return [{"what": label, **info[label], "wall_s": round(statistics.median(walls[label]), 2),
             "rounds_s": [round(w, 2) for w in walls[label]], "images": args.photos} for label in labels]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--photos", type=int, default=60, help="photos in the whole-run folder")
    ap.add_argument("--runs", nargs="*", default=["openvino", "torch"], help="backends for the whole run")
    ap.add_argument("--executors", nargs="*", default=["auto", "ray"],
                    help="executors for the whole run (auto: inline for these photos)")
    ap.add_argument("--whole-rounds", type=int, default=3, help="alternating rounds of (c); medians")
    ap.add_argument("--no-whole-run", action="store_true", help="skip (c)")
    ap.add_argument("--no-network", action="store_true", help="skip (b) and the network figures of (a)")
    ap.add_argument("--reference-path", default="/tmp/bench-venv", help="where openmodelzoo-modelapi is installed")
    ap.add_argument("--reference-run", help=argparse.SUPPRESS)  # internal: the reference over a folder
    ap.add_argument("--threads", type=int, default=2, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "cpu_backends.json")
    args = ap.parse_args()
    if args.reference_run:
        reference_run(args.reference_run, args.reference_path, args.threads)
        return
    classes = import_reference(args.reference_path)
    if classes is None:
        print(f"(a) skipped: openmodelzoo-modelapi not found in {args.reference_path!r}; install it with\n    {INSTALL}",
              file=sys.stderr)
    rows, startup = [], {}
    if not args.no_network:
        with tempfile.TemporaryDirectory(prefix="posepipe-ov-cache-") as cache:
            rows, startup = network_figures(args, classes, Path(cache))
    whole = [] if args.no_whole_run else whole_runs(args, classes is not None)

    by = {r["what"]: r for r in rows}
    for r in rows:  # time ratio to the reference runtime's own network figure at the same thread count
        threads = 1 if r["what"].endswith("1 thread(s)") else 2 if r["what"].endswith("2 thread(s)") else None
        ref = by.get(f"reference network, {threads} thread(s)") if threads else by.get(
            "reference decoder (OMZ OpenPoseDecoder + NMS)")
        r["vs_reference"] = round(r["ms_per_image"] / ref["ms_per_image"], 2) if ref else None
        ref_f32 = by.get(f"reference f32 network, {threads} thread(s)") if threads else None
        r["vs_reference_f32"] = round(r["ms_per_image"] / ref_f32["ms_per_image"], 2) if ref_f32 else None
    ref_run = next((w for w in whole if w["what"].startswith("reference")), None)
    for w in whole:
        w["vs_reference"] = round(w["wall_s"] / ref_run["wall_s"], 2) if ref_run else None

    if rows:
        print("\n| network / stage (13 photos, height 368, batch 1) | ms/image | images/s "
              "| time vs reference, same threads | time vs reference f32 |")
        print("|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['what']} | {r['ms_per_image']} | {r['images_per_s']} | {r['vs_reference'] or '-'} "
                  f"| {r['vs_reference_f32'] or '-'} |")
        print("\n| start-up | s |\n|---|---|")
        for k, v in startup.items():
            print(f"| {k} | {v} |")
    if whole:
        print(f"\n| whole run ({args.photos} photos, incl. start-up; median of {args.whole_rounds}) | executor "
              "| wall s | rounds s | people | time vs reference |")
        print("|---|---|---|---|---|---|")
        for w in whole:
            print(f"| {w['what']} | {w.get('executor') or '-'} | {w['wall_s']} | {', '.join(map(str, w['rounds_s']))} "
                  f"| {w['people']} | {w['vs_reference'] if w['vs_reference'] else '-'} |")
    import openvino

    meta = {"openvino": openvino.__version__, "cpu": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2), "rounds": args.rounds,
            "reference": "openmodelzoo-modelapi 2022.3.0 OpenPose wrapper" if classes else f"skipped ({INSTALL})",
            "model": MODEL, "height": HEIGHT}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "network": rows, "startup_s": startup, "whole_run": whole}, indent=1))
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
