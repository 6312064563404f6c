"""The torch backend: a registry network as a ``torch.nn.Module`` on CPU or CUDA.

:class:`TorchNetwork` maps a batch of uint8 BGR canvases [N, H, W, 3] (normalised on the device:
the uint8 hand-off) or of float32 [N, 3, H, W] network inputs (numpy) to float32 numpy
(heatmaps [N, 19, H/8, W/8], pafs [N, 38, H/8, W/8]); precision fp32, or fp16/bf16 by autocast.
:meth:`TorchNetwork.device_maps` keeps the maps on the device (for device-side candidates).
"""
from __future__ import annotations

import os

import numpy as np
import torch

from pipeline.models.registry import WeightsEntry

#: runner precision name -> autocast dtype (fp32: no autocast).
TORCH_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class TorchNetwork:
    """``entry``'s network in eval mode on ``device`` (weights from ``model_dir``, or the prebuilt
    ``model``). channels_last defaults to True on CUDA. ``num_threads``: torch's intra-op threads
    for this process (torch.set_num_threads; None leaves torch's setting, which follows
    $OMP_NUM_THREADS; Ray sets that to a task's or actor's CPUs)."""

    def __init__(self, entry: WeightsEntry, device: str = "cpu", precision: str = "fp32",
                 channels_last: bool | None = None, model_dir: str | os.PathLike | None = None,
                 model: torch.nn.Module | None = None, num_threads: int | None = None):
        from pipeline.models import load_model

        dev = torch.device(device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {device!r} requested but CUDA is not available; use device='cpu'")
        if dev.type == "cpu" and precision == "fp16":
            raise ValueError("precision 'fp16' needs a CUDA device; on CPU use 'fp32' (or 'bf16')")
        if num_threads is not None:
            torch.set_num_threads(num_threads)
        self.device = dev
        self.preprocessing = entry.preprocessing
        self.dtype = TORCH_DTYPES[precision]
        self.channels_last = dev.type == "cuda" if channels_last is None else channels_last
        self.model = (load_model(entry.name, model_dir=model_dir, device=str(dev)) if model is None
                      else model.to(dev).eval())
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)

    @torch.inference_mode()
    def device_maps(self, batch: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 BGR canvases [N, H, W, 3] or float32 inputs [N, 3, H, W] -> (heatmaps [N, 19, H/8, W/8],
        pafs [N, 38, H/8, W/8]) as float32 tensors on this network's device. uint8 canvases cross to the
        device as bytes (from pinned memory on CUDA) and are normalised there
        (:func:`pipeline.models.device_candidates.network_input`)."""
        from pipeline.models.device_candidates import network_input

        x = torch.from_numpy(np.ascontiguousarray(batch))
        if self.device.type == "cuda":
            x = x.pin_memory()
        x = x.to(self.device, non_blocking=True)
        if x.dtype == torch.uint8:
            x = network_input(x, self.preprocessing)
        elif x.dtype != torch.float32 or x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"the torch backend takes uint8 [N, H, W, 3] canvases or float32 [N, 3, H, W] "
                             f"inputs, got {x.dtype} {tuple(x.shape)}")
        x = x.contiguous(memory_format=torch.channels_last if self.channels_last else torch.contiguous_format)
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32):
            heat, paf = self.model(x)
        return heat.float(), paf.float()

    def __call__(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`device_maps` copied to the host: float32 numpy (heatmaps [N, 19, H/8, W/8], pafs [N, 38, ...])."""
        heat, paf = self.device_maps(batch)
        return heat.cpu().numpy(), paf.cpu().numpy()
