"""The torch backend: a registry network as a ``torch.nn.Module`` on CPU or CUDA.

:class:`TorchNetwork` maps a float32 [N, 3, H, W] preprocessed batch (numpy) to float32 numpy
(heatmaps [N, 19, H/8, W/8], pafs [N, 38, H/8, W/8]); precision fp32, or fp16/bf16 by autocast.
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
        self.dtype = TORCH_DTYPES[precision]
        self.channels_last = dev.type == "cuda" if channels_last is None else channels_last
        self.model = (load_model(entry.name, model_dir=model_dir, device=str(dev)) if model is None
                      else model.to(dev).eval())
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)

    @torch.inference_mode()
    def __call__(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """float32 [N, 3, H, W] -> float32 (heatmaps [N, 19, H/8, W/8], pafs [N, 38, H/8, W/8])."""
        x = torch.from_numpy(batch).to(self.device, non_blocking=True)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32):
            heat, paf = self.model(x)
        return heat.float().cpu().numpy(), paf.float().cpu().numpy()
