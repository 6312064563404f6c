"""Run a dataflow graph converted from a TF frozen GraphDef or a TFLite flatbuffer as a torch module.

The loaders (``pipeline.models.loaders.tf_graphdef`` / ``tflite_flatbuffer``) turn a file into a
:class:`Graph`: a topologically ordered list of :class:`GraphOp` in NCHW layout with weights
already in torch layout. :class:`GraphModule` builds one registered sub-module per op (so
``state_dict``, ``.to(device)``, ``.half()`` and ``channels_last`` all work) and its forward
walks the op list. TF "SAME" padding is reproduced exactly, including its asymmetric
(bottom/right-heavy) split for even sizes and stride 2, for any input size.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pipeline.skeleton import NUM_HEATMAPS, NUM_PAFS


@dataclass
class GraphOp:
    """One op of a converted graph.

    kind:    "conv", "max_pool", "instance_norm", "relu", "relu6", "add", "concat", "resize_bilinear".
    inputs:  names of the tensors it reads (graph input or earlier op outputs).
    output:  name of the tensor it writes.
    weights: float32 arrays in torch layout ("weight" [O, I/groups, kh, kw], "bias" [O], or the
             instance_norm "weight"/"bias" [C]).
    attrs:   op settings (stride, dilation, padding "SAME"/"VALID", groups, kernel, dim, eps,
             size / align_corners / half_pixel_centers for resize).
    """

    kind: str
    inputs: tuple[str, ...]
    output: str
    weights: dict[str, np.ndarray] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Graph:
    """A converted graph: one NCHW float input, one NCHW output, ops in execution order."""

    input: str
    output: str
    ops: list[GraphOp]


def tf_same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TF "SAME" padding (before, after) in pixels along one axis of length ``size``.

    Output length is ceil(size / stride); the extra pixel of an odd total goes after (bottom/right).
    """
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


class TFConv2d(nn.Module):
    """Conv2d (grouped / depthwise when groups > 1) with TF "SAME" or "VALID" padding.

    Maps [N, I, H, W] to [N, O, ceil(H/stride), ceil(W/stride)] (SAME) or the VALID size.
    """

    def __init__(self, weight: np.ndarray, bias: np.ndarray | None, stride: tuple[int, int],
                 dilation: tuple[int, int], padding: str, groups: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.from_numpy(np.ascontiguousarray(weight, np.float32)))
        self.bias = None if bias is None else nn.Parameter(torch.from_numpy(np.ascontiguousarray(bias, np.float32)))
        self.stride, self.dilation, self.groups = tuple(stride), tuple(dilation), groups
        if padding not in ("SAME", "VALID"):
            raise ValueError(f"unsupported padding {padding!r}")
        self.same = padding == "SAME"
        kh, kw = weight.shape[2:]
        # Stride 1 with an even total pad is symmetric whatever the input size: let the conv pad.
        self.static_pad: tuple[int, int] | None = None
        if not self.same:
            self.static_pad = (0, 0)
        elif self.stride == (1, 1) and (kh - 1) * dilation[0] % 2 == 0 and (kw - 1) * dilation[1] % 2 == 0:
            self.static_pad = ((kh - 1) * dilation[0] // 2, (kw - 1) * dilation[1] // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.static_pad is None:
            kh, kw = self.weight.shape[2:]
            top, bottom = tf_same_padding(x.shape[2], kh, self.stride[0], self.dilation[0])
            left, right = tf_same_padding(x.shape[3], kw, self.stride[1], self.dilation[1])
            x = F.pad(x, (left, right, top, bottom))
            padding: tuple[int, int] = (0, 0)
        else:
            padding = self.static_pad
        return F.conv2d(x, self.weight, self.bias, self.stride, padding, self.dilation, self.groups)


class TFMaxPool2d(nn.Module):
    """Max pooling with TF "SAME"/"VALID" padding (padded cells never win: they are -inf)."""

    def __init__(self, kernel: tuple[int, int], stride: tuple[int, int], padding: str) -> None:
        super().__init__()
        self.kernel, self.stride, self.same = tuple(kernel), tuple(stride), padding == "SAME"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.same:
            top, bottom = tf_same_padding(x.shape[2], self.kernel[0], self.stride[0], 1)
            left, right = tf_same_padding(x.shape[3], self.kernel[1], self.stride[1], 1)
            x = F.pad(x, (left, right, top, bottom), value=float("-inf"))
        return F.max_pool2d(x, self.kernel, self.stride)


class InstanceStatsNorm(nn.Module):
    """Batch normalisation with statistics taken per image (over H, W), then affine per channel.

    This is exactly what TF's FusedBatchNorm(is_training=True) computes for a batch of ONE image
    (biased variance, ``eps`` inside the square root), but independent of the other images in
    the batch. Statistics are accumulated in float32 even for half-precision inputs.
    """

    def __init__(self, weight: np.ndarray, bias: np.ndarray, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.from_numpy(np.ascontiguousarray(weight, np.float32)))
        self.bias = nn.Parameter(torch.from_numpy(np.ascontiguousarray(bias, np.float32)))
        self.eps = float(eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        var, mean = torch.var_mean(xf, dim=(2, 3), keepdim=True, correction=0)
        scale = self.weight.float()[:, None, None] * torch.rsqrt(var + self.eps)
        return ((xf - mean) * scale + self.bias.float()[:, None, None]).to(x.dtype)


class Add(nn.Module):
    """Elementwise sum of two same-shape tensors."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b


class Concat(nn.Module):
    """Concatenation along ``dim`` (1 = channels in NCHW)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, dim=self.dim)


class TFResizeBilinear(nn.Module):
    """TF/TFLite ResizeBilinear on [N, C, H, W], reproducing TF's three coordinate conventions.

    Output size is ``size`` (height, width) in cells, or, if None, the spatial size of the second
    forward argument (TF graphs that resize "to the shape of" another tensor).
    Legacy mode (both flags False) samples source row ``dst * in/out``, unlike torch's half-pixel
    ``F.interpolate(align_corners=False)``.
    """

    def __init__(self, size: tuple[int, int] | None, align_corners: bool, half_pixel_centers: bool) -> None:
        super().__init__()
        self.size = None if size is None else tuple(int(s) for s in size)
        self.align_corners, self.half_pixel_centers = align_corners, half_pixel_centers

    def _coords(self, n_in: int, n_out: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        dst = torch.arange(n_out, device=device, dtype=torch.float32)
        if self.align_corners and n_out > 1:
            src = dst * ((n_in - 1) / (n_out - 1))
        elif self.half_pixel_centers:
            src = ((dst + 0.5) * (n_in / n_out) - 0.5).clamp(min=0.0)
        else:
            src = dst * (n_in / n_out)
        lo = src.floor()
        frac = src - lo
        lo = lo.long().clamp(max=n_in - 1)
        hi = (lo + 1).clamp(max=n_in - 1)
        return lo, hi, frac

    def forward(self, x: torch.Tensor, like: torch.Tensor | None = None) -> torch.Tensor:
        out_h, out_w = self.size if self.size is not None else like.shape[2:]
        y0, y1, fy = self._coords(x.shape[2], out_h, x.device)
        x0, x1, fx = self._coords(x.shape[3], out_w, x.device)
        fy = fy.to(x.dtype)[:, None]
        fx = fx.to(x.dtype)
        rows = x.index_select(2, y0) + (x.index_select(2, y1) - x.index_select(2, y0)) * fy
        return rows.index_select(3, x0) + (rows.index_select(3, x1) - rows.index_select(3, x0)) * fx


def _make_layer(op: GraphOp) -> nn.Module:
    a, w = op.attrs, op.weights
    if op.kind == "conv":
        return TFConv2d(w["weight"], w.get("bias"), a["stride"], a["dilation"], a["padding"], a["groups"])
    if op.kind == "max_pool":
        return TFMaxPool2d(a["kernel"], a["stride"], a["padding"])
    if op.kind == "instance_norm":
        return InstanceStatsNorm(w["weight"], w["bias"], a["eps"])
    if op.kind == "relu":
        return nn.ReLU()
    if op.kind == "relu6":
        return nn.ReLU6()
    if op.kind == "add":
        return Add()
    if op.kind == "concat":
        return Concat(a["dim"])
    if op.kind == "resize_bilinear":
        return TFResizeBilinear(a.get("size"), a["align_corners"], a["half_pixel_centers"])
    raise ValueError(f"unsupported graph op kind {op.kind!r} (op writing {op.output!r})")


def _module_key(name: str, taken: set[str]) -> str:
    key = re.sub(r"[^0-9A-Za-z_]", "_", name)
    while key in taken:
        key += "_"
    taken.add(key)
    return key


class GraphModule(nn.Module):
    """A :class:`Graph` as an nn.Module: float32 NCHW input -> the graph's NCHW output tensor.

    Sub-modules are named after the original graph's tensors ('/' and '.' become '_').
    Intermediate tensors are dropped right after their last use.
    """

    def __init__(self, graph: Graph) -> None:
        super().__init__()
        self.layers = nn.ModuleDict()
        taken: set[str] = set()
        last_use: dict[str, int] = {}
        for i, op in enumerate(graph.ops):
            for name in op.inputs:
                last_use[name] = i
        self.input_name, self.output_name = graph.input, graph.output
        self._plan: list[tuple[str, tuple[str, ...], str, tuple[str, ...]]] = []
        for i, op in enumerate(graph.ops):
            key = _module_key(op.output, taken)
            self.layers[key] = _make_layer(op)
            dead = tuple(n for n in dict.fromkeys(op.inputs) if last_use[n] == i and n != graph.output)
            self._plan.append((key, op.inputs, op.output, dead))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        env = {self.input_name: x}
        for key, inputs, output, dead in self._plan:
            env[output] = self.layers[key](*(env[n] for n in inputs))
            for n in dead:
                del env[n]
        return env[self.output_name]


class PafGraphNetwork(nn.Module):
    """A converted tf-pose-style network whose output concatenates 19 heatmaps then 38 PAFs.

    forward: float32 [N, 3, H, W] raw BGR 0-255 -> (heatmaps [N, 19, H/8, W/8],
    pafs [N, 38, H/8, W/8]) in the COCO-18 layout of ``pipeline.skeleton``.
    """

    def __init__(self, graph: Graph) -> None:
        super().__init__()
        self.body = GraphModule(graph)  # not ``graph``: TorchScript modules reserve that name

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.body(x)
        if out.shape[1] != NUM_HEATMAPS + NUM_PAFS:
            raise ValueError(f"graph output has {out.shape[1]} channels, expected {NUM_HEATMAPS + NUM_PAFS}")
        return out[:, :NUM_HEATMAPS], out[:, NUM_HEATMAPS:]
