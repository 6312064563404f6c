"""Run a registered PAF network on images of any size: backend choice, batching, pass averaging.

:class:`PoseNetRunner` turns HxWx3 uint8 BGR images into :class:`pipeline.fields.PoseFields`.
Preprocessing, shape bucketing, cropping and multi-scale / flip averaging live in
:mod:`pipeline.models.preprocessing` (numpy/cv2, shared by every backend); the network runs on a
backend:

* ``torch`` (:mod:`pipeline.models.torch_backend`): the verified ``torch.nn.Module``, CPU or CUDA;
* ``openvino`` (:mod:`pipeline.models.openvino_backend`): the OpenVINO CPU runtime;
* ``auto`` (default): openvino on CPU, torch on CUDA (or when a prebuilt torch ``model`` is given).

Importing this module does not import torch; the torch backend imports it when chosen.
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from pipeline.fields import PoseFields
from pipeline.models.preprocessing import (  # noqa: F401  (re-exported: the runner's public helpers)
    HEATMAP_MIRROR, Placement, Prepared, average_passes, crop_to_image, prepare_passes, preprocess, resample,
    unflip,
)
from pipeline.models.registry import BACKENDS, PRECISIONS, get
from pipeline.parsing import LimbCandidates, ParseConfig, find_candidates


def resolve_backend(backend: str, device: str, prebuilt_model: bool = False) -> str:
    """The backend ``backend`` means on ``device``: "auto" is openvino on CPU, torch on CUDA (and
    torch for a prebuilt torch module). Raises ValueError for unknown names or openvino on CUDA."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    on_cpu = str(device).split(":")[0] == "cpu"
    if backend == "auto":
        return "openvino" if on_cpu and not prebuilt_model else "torch"
    if backend == "openvino" and not on_cpu:
        raise ValueError(f"the openvino backend runs on the CPU only, got device {device!r}; "
                         f"use backend 'torch' (or 'auto') for CUDA")
    if backend == "openvino" and prebuilt_model:
        raise ValueError("a prebuilt torch model runs on the torch backend; use backend 'torch' or 'auto'")
    return backend


class PoseNetRunner:
    """A loaded network plus everything needed to turn images into :class:`PoseFields`.

    backend:     "auto" (openvino on CPU, torch on CUDA), "torch" or "openvino" (CPU only).
    num_threads: math threads of this process's network (OpenVINO INFERENCE_NUM_THREADS /
                 torch.set_num_threads); None: $OMP_NUM_THREADS if set (Ray sets it to an actor's
                 CPUs), else the backend's default. A job passes its actor's CPUs.
    precision:   "fp32" (default), "bf16" (CPU or CUDA), "fp16" (CUDA only).
    channels_last: torch memory format (default True on CUDA). ``batch_size`` images of the same input
    shape go through one forward; entries with ``batch_independent=False`` run one at a time.
    ``model``: an already built torch network for entry ``model_name`` (then no weight files are read;
    torch backend). ``cache_dir``: the openvino backend's conversion / compile cache (default: see
    :func:`pipeline.models.openvino_backend.cache_root`). ``candidates_on_device``: find limb
    candidates next to the network in torch (default: on CUDA; see :meth:`candidates_prepared`).
    """

    def __init__(self, model_name: str, device: str = "cpu", batch_size: int = 8, precision: str = "fp32",
                 channels_last: bool | None = None, scales: Sequence[float] = (1.0,), flip: bool = False,
                 target_height: int | None = None, model_dir: str | os.PathLike | None = None, model=None,
                 backend: str = "auto", num_threads: int | None = None,
                 cache_dir: str | os.PathLike | None = None, candidates_on_device: bool | None = None):
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
        if str(device).split(":")[0] == "cpu" and precision == "fp16":
            raise ValueError("precision 'fp16' needs a CUDA device; on CPU use 'fp32' (or 'bf16')")
        if not scales or any(s <= 0 for s in scales):
            raise ValueError(f"scales must be positive factors, got {scales!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if num_threads is not None and num_threads < 1:
            raise ValueError(f"num_threads must be >= 1 (or None for the default), got {num_threads}")
        self.entry = get(model_name)
        if self.entry.preprocessing.input_size is not None and tuple(scales) != (1.0,):
            raise ValueError(f"model {model_name!r} has a fixed input size; use scales=(1.0,)")
        self.backend = resolve_backend(backend, device, prebuilt_model=model is not None)
        self.precision = precision
        self.scales = tuple(float(s) for s in scales)
        self.flip = flip
        self.target_height = target_height
        self.batch_size = batch_size if self.entry.batch_independent else 1
        self._candidates_on_device = (str(device).split(":")[0] == "cuda" if candidates_on_device is None
                                      else candidates_on_device)
        if self.backend == "torch":
            from pipeline.models.torch_backend import TorchNetwork

            self.network = TorchNetwork(self.entry, device, precision, channels_last, model_dir, model, num_threads)
        else:
            from pipeline.models.openvino_backend import OpenVINONetwork

            self.network = OpenVINONetwork(self.entry, model_dir, num_threads, precision, cache_dir)

    def prepare(self, images: Sequence[np.ndarray]) -> list[list[Prepared]]:
        """This runner's passes for ``images`` (the entry's ``preprocessing.prepare``, shape-bucketed);
        pure numpy/cv2 work that may run elsewhere (decode workers)."""
        return self.entry.preprocessing.prepare(images, self.scales, self.flip, self.target_height)

    def __call__(self, images: Sequence[np.ndarray]) -> list[PoseFields]:
        """HxWx3 uint8 BGR images (any sizes) -> one :class:`PoseFields` per image, in order."""
        return self.infer_prepared(self.prepare(images))

    def forward_batch(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """uint8 BGR canvases [N, H, W, 3] (:attr:`Prepared.pixels`) or float32 network inputs [N, 3, H, W]
        -> float32 (heatmaps [N, 19, H/8, W/8], pafs [N, 38, H/8, W/8])."""
        return self.network(batch)

    def _batches(self, prepared: Sequence[Prepared]):
        """(indices, stacked uint8 canvases) per batch: same-shape canvases (one shape bucket)
        together, up to ``batch_size`` each."""
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, p in enumerate(prepared):
            by_shape.setdefault(p.pixels.shape, []).append(i)
        for idx in by_shape.values():
            for start in range(0, len(idx), self.batch_size):
                chunk = idx[start:start + self.batch_size]
                yield chunk, np.stack([prepared[i].pixels for i in chunk])

    def _run_pass(self, prepared: Sequence[Prepared]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Maps cropped to each image's valid cells, grouping same-shape inputs into batches."""
        out: list = [None] * len(prepared)
        for chunk, batch in self._batches(prepared):
            heat, paf = self.forward_batch(batch)
            for k, i in enumerate(chunk):
                out[i] = crop_to_image(heat[k], paf[k], prepared[i].placement)
        return out

    def infer_prepared(self, passes: Sequence[Sequence[Prepared]]) -> list[PoseFields]:
        """Run precomputed passes (``[pass][image]``, e.g. from :meth:`prepare`) and average them."""
        return average_passes(passes, [self._run_pass(p) for p in passes])

    @property
    def candidates_on_device(self) -> bool:
        """Whether :meth:`candidates_prepared` finds candidates next to the network (the torch backend
        with one pass: no multi-scale / flip averaging); set ``candidates_on_device`` to choose."""
        return self._candidates_on_device and self.backend == "torch" and len(self.scales) == 1 and not self.flip

    def candidates_prepared(self, passes: Sequence[Sequence[Prepared]], config: ParseConfig) -> list[LimbCandidates]:
        """Limb candidates of every image of ``passes`` (``[pass][image]``). On the device
        (:attr:`candidates_on_device`): :func:`pipeline.models.device_candidates.find_candidates_torch`
        on each batch's maps, so only the candidates are copied to the host; else
        :func:`pipeline.parsing.find_candidates` on :meth:`infer_prepared`'s fields."""
        if not self.candidates_on_device:
            return [find_candidates(f, config) for f in self.infer_prepared(passes)]
        from pipeline.models.device_candidates import MapGeometry, find_candidates_torch

        prepared, out = passes[0], [None] * len(passes[0])
        for chunk, batch in self._batches(prepared):
            heat, paf = self.network.device_maps(batch)
            geometry = [MapGeometry.of_placement(prepared[i].placement) for i in chunk]
            for i, cands in zip(chunk, find_candidates_torch(heat, paf, geometry, config)):
                out[i] = cands
        return out
