"""Lightweight OpenPose (Osokin 2018): MobileNet-v1 backbone, CPM, initial stage, one refinement stage.

This is Intel Open Model Zoo ``human-pose-estimation-0001`` as a plain ``torch.nn.Module``; its
weights are filled from the OMZ OpenVINO IR (INT8 export: u8 weights dequantised by FakeQuantize,
activations fake-quantised at every convolution input). Those activation FakeQuantize points are
reproduced by :class:`ActivationFakeQuantize` so the module matches the official runtime
(``activation_quant=False`` gives the plain float network).

Input: float32 [N, 3, H, W], raw BGR pixels 0-255 (the IR's ``(x - 128) / 255`` normalisation is part
of the module), any H, W (fully convolutional; multiples of 8 keep the grid exact).
Output: (heatmaps [N, 19, H/8, W/8], pafs [N, 38, H/8, W/8]) in the COCO-18 layout of
:mod:`pipeline.skeleton`.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import torch
from torch import nn

from pipeline.models.loaders.openvino_ir import IRFormatError, IRGraph, read_ir
from pipeline.models.catalog import OMZ_BIN_NAME, OMZ_XML_NAME
from pipeline.skeleton import NUM_HEATMAPS, NUM_PAFS


class ActivationFakeQuantize(nn.Module):
    """OpenVINO FakeQuantize of an activation, as the OpenVINO CPU plugin executes it in INT8.

    ``code = round(clamp((x - low) * (levels - 1) / (high - low), 0, levels - 1))`` and
    ``out = out_low + code * out_step``; ranges are scalars or per-channel [1, C, 1, 1]. By default
    the output is the input grid shifted by ``-FQ(0)``: the runtime keeps u8 codes with an integer
    zero point ``round(-low / step)``, so zero (e.g. convolution padding) is exact and every code is
    off by that rounding (measured against OpenVINO: without it, layers with a signed input range
    differ by ~1e-4, which flips roundings downstream). Starts disabled (identity); :meth:`set_range`
    arms it. Computed in float32 under any autocast, with in-place element-wise ops (about 10x faster
    on CPU than torch.fake_quantize_per_*_affine, which also builds a gradient mask).
    """

    def __init__(self) -> None:
        super().__init__()
        self.levels = 0
        for name in ("low", "inv_step", "out_low", "out_step"):
            self.register_buffer(name, torch.zeros(()))
        self._sub_low = self._add_out_low = False

    def set_range(self, low, high, levels: int, out_low=None, out_high=None) -> None:
        """Arm with input range [low, high] (arrays broadcastable to [N, C, H, W]) and ``levels`` codes;
        output range [out_low, out_high] defaults to the input range with an integer zero point."""
        low = torch.as_tensor(np.asarray(low, np.float32))
        high = torch.as_tensor(np.asarray(high, np.float32))
        self.levels = int(levels)
        step = (high - low) / (self.levels - 1)
        self.low, self.inv_step = low, (self.levels - 1) / (high - low)
        if out_low is None:
            self.out_low, self.out_step = -torch.round(-low / step) * step, step
        else:
            self.out_low = torch.as_tensor(np.asarray(out_low, np.float32))
            self.out_step = (torch.as_tensor(np.asarray(out_high, np.float32)) - self.out_low) / (self.levels - 1)
        self._sub_low = bool(torch.any(self.low != 0))
        self._add_out_low = bool(torch.any(self.out_low != 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.levels:
            return x
        y = x.float() - self.low if self._sub_low else x.float().clone()
        y = y.mul_(self.inv_step).clamp_(0, self.levels - 1).round_().mul_(self.out_step)
        if self._add_out_low:
            y = y.add_(self.out_low)
        return y.to(x.dtype)

    def extra_repr(self) -> str:
        return f"levels={self.levels}" if self.levels else "disabled"


class ConvUnit(nn.Module):
    """Input fake-quantiser -> Conv2d (with bias; batch norm folded) -> activation."""

    def __init__(self, cin: int, cout: int, k: int = 1, stride: int = 1, dilation: int = 1,
                 depthwise: bool = False, act: str | None = "relu"):
        super().__init__()
        self.quant = ActivationFakeQuantize()
        self.conv = nn.Conv2d(cin, cout, k, stride, padding=dilation * (k // 2), dilation=dilation,
                              groups=cin if depthwise else 1, bias=True)
        self.act = {"relu": nn.ReLU(inplace=True), "elu": nn.ELU(inplace=True), None: nn.Identity()}[act]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(self.quant(x)))


def _dw_sep(cin: int, cout: int, stride: int = 1, dilation: int = 1, act: str = "relu") -> list[ConvUnit]:
    return [ConvUnit(cin, cin, 3, stride, dilation, depthwise=True, act=act), ConvUnit(cin, cout, 1, act=act)]


class Residual(nn.Module):
    """``quant_in(x) + quant_res(trunk(x))`` (the IR adds the quantised trunk input)."""

    def __init__(self, trunk: list[ConvUnit]):
        super().__init__()
        self.trunk = nn.Sequential(*trunk)
        self.quant_res = ActivationFakeQuantize()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk[0].quant(x) + self.quant_res(self.trunk(x))


class LightweightOpenPose(nn.Module):
    """The OMZ human-pose-estimation-0001 network (4.1 M parameters); see the module docstring."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("input_scale", torch.tensor(1.0 / 255.0))
        self.register_buffer("input_shift", torch.full((1, 3, 1, 1), -128.0 / 255.0))
        self.backbone = nn.Sequential(
            ConvUnit(3, 32, 3, stride=2),
            *_dw_sep(32, 64), *_dw_sep(64, 128, stride=2), *_dw_sep(128, 128), *_dw_sep(128, 256, stride=2),
            *_dw_sep(256, 256), *_dw_sep(256, 512), *_dw_sep(512, 512, dilation=2),
            *_dw_sep(512, 512), *_dw_sep(512, 512), *_dw_sep(512, 512), *_dw_sep(512, 512),
        )
        self.cpm_align = ConvUnit(512, 128, act="elu")
        self.cpm_trunk = Residual([ConvUnit(128, 128, act="elu"), *_dw_sep(128, 128, act="elu"),
                                   *_dw_sep(128, 128, act="elu"), ConvUnit(128, 128, 3, depthwise=True, act="elu"),
                                   ConvUnit(128, 128, act="elu")])
        self.cpm_out = ConvUnit(128, 128, 3)
        # initial stage
        self.init_trunk = nn.Sequential(ConvUnit(128, 128, 3), ConvUnit(128, 128, 3), ConvUnit(128, 128, 3))
        self.init_pafs = nn.Sequential(ConvUnit(128, 512), ConvUnit(512, NUM_PAFS, act=None))
        self.init_heatmaps = nn.Sequential(ConvUnit(128, 512), ConvUnit(512, NUM_HEATMAPS, act=None))
        self.quant_concat_pafs = ActivationFakeQuantize()
        self.quant_concat_heatmaps = ActivationFakeQuantize()
        # refinement stage: 5 residual blocks (1x1 squeeze, then 3x3 and dilated 3x3 on a skip)
        cin = NUM_PAFS + NUM_HEATMAPS + 128
        self.refine_blocks = nn.ModuleList()
        for i in range(5):
            self.refine_blocks.append(nn.Sequential(
                ConvUnit(cin if i == 0 else 128, 128),
                Residual([ConvUnit(128, 128, 3), ConvUnit(128, 128, 3, dilation=2)])))
        self.refine_pafs = nn.Sequential(ConvUnit(128, 128), ConvUnit(128, NUM_PAFS, act=None))
        self.refine_heatmaps = nn.Sequential(ConvUnit(128, 128), ConvUnit(128, NUM_HEATMAPS, act=None))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[N, 3, H, W] raw BGR 0-255 -> (heatmaps [N, 19, H/8, W/8], pafs [N, 38, H/8, W/8])."""
        x = x * self.input_scale + self.input_shift
        f = self.cpm_out(self.cpm_trunk(self.cpm_align(self.backbone(x))))
        t = self.init_trunk(f)
        pafs0, heat0 = self.init_pafs(t), self.init_heatmaps(t)
        y = torch.cat([self.quant_concat_pafs(pafs0), self.quant_concat_heatmaps(heat0),
                       self.init_trunk[0].quant(f)], dim=1)
        for block in self.refine_blocks:
            y = block(y)
        return self.refine_heatmaps(y), self.refine_pafs(y)


# ---- filling the module from the OMZ IR ------------------------------------------------------------

def _ir_conv_names() -> list[str]:
    """IR Convolution/GroupConvolution layer names, in the order of ``_conv_units`` below."""
    names = ["conv1"]
    for block in ("2_1", "2_2", "3_1", "3_2", "4_1", "4_2", "5_1", "5_2", "5_3", "5_4", "5_5"):
        names += [f"conv{block}/dw", f"conv{block}/sep"]
    cpm = "conv4_3_CPM/"
    names += [cpm + "al/WithoutBiases", cpm + "red/WithoutBiases", cpm + "dw1", cpm + "dw1/1x1/WithoutBiases",
              cpm + "dw2", cpm + "dw2/1x1/WithoutBiases", cpm + "dw3", cpm + "inc/WithoutBiases",
              "conv4_4_CPM/WithoutBiases"]
    names += [f"conv5_{i}_CPM_L1/WithoutBiases" for i in (1, 2, 3)]
    names += ["conv5_4_CPM_L1/WithoutBiases", "conv5_5_CPM_L1/WithoutBiases",
              "conv5_4_CPM_L2/WithoutBiases", "conv5_5_CPM_L2/WithoutBiases"]
    for i in range(1, 6):
        m = f"Mconv{i}_stage2_L1/"
        names += [m + "sq/WithoutBiases", m + "3x3/WithoutBiases", m + "3x3/2/WithoutBiases"]
    names += ["Mconv6_stage2_L1/WithoutBiases", "Mconv7_stage2_L1/WithoutBiases",
              "Mconv6_stage2_L2/WithoutBiases", "Mconv7_stage2_L2/WithoutBiases"]
    return names


def _conv_units(net: LightweightOpenPose) -> list[ConvUnit]:
    units = list(net.backbone) + [net.cpm_align, *net.cpm_trunk.trunk, net.cpm_out, *net.init_trunk,
                                  *net.init_pafs, *net.init_heatmaps]
    for block in net.refine_blocks:
        units += [block[0], *block[1].trunk]
    return units + [*net.refine_pafs, *net.refine_heatmaps]


def _residual_quant_names() -> list[tuple[str, str]]:
    return [("cpm_trunk", "conv4_3_CPM/res/fq_input_1")] + [
        (f"refine_blocks.{i}.1", f"Mconv{i + 1}_stage2_L1/5x5/res/fq_input_1") for i in range(5)]


def _set_quant(graph: IRGraph, quant: ActivationFakeQuantize, fq_layer) -> None:
    p = graph.fake_quantize_params(fq_layer)
    if not (np.array_equal(p.input_low, p.output_low) and np.array_equal(p.input_high, p.output_high)):
        raise IRFormatError(f"{graph.source}: FakeQuantize {fq_layer.name!r} has output range != input range")
    shape = (1, -1, 1, 1) if p.input_low.size > 1 else ()
    quant.set_range(p.input_low.reshape(shape), p.input_high.reshape(shape), p.levels)


def _bias_of(graph: IRGraph, conv_layer) -> np.ndarray:
    adds = [graph.layers[c] for c in conv_layer.consumers if graph.layers[c].type == "Add"]
    if len(adds) != 1:
        raise IRFormatError(f"{graph.source}: convolution {conv_layer.name!r} is not followed by one bias Add")
    const = [graph.producer(adds[0], i) for i in range(2) if graph.is_constant(graph.producer(adds[0], i))]
    return graph.constant(const[0]).reshape(-1)


def _set_concat_quant(graph: IRGraph, concat, quants: list[ActivationFakeQuantize]) -> None:
    """Arm the quantisers of a Concat's inputs the way OpenVINO's low-precision transformations run them.

    All inputs share one u8 code space: step ``s = (max high - min low) / 255`` with integer zero point
    ``round(-min low / s)``. Input i keeps its own range [lo_i, hi_i] but gets
    ``n_i = round((hi_i - lo_i) / s)`` intervals, and code c means ``(c + round((lo_i - min low) / s)
    - zero point) * s``. (Reverse-engineered from OpenVINO 2026.4 CPU outputs; it also changes the
    FakeQuantize in place, so the features' other consumer, conv5_1_CPM_L1, sees the same codes.)
    """
    fqs = [graph.fake_quantize_params(graph.producer(concat, i)) for i in range(len(concat.inputs))]
    if any(p.input_low.size != 1 for p in fqs):
        raise IRFormatError(f"{graph.source}: per-channel FakeQuantize into {concat.name!r} is not supported")
    lows = [float(p.input_low.reshape(())) for p in fqs]
    highs = [float(p.input_high.reshape(())) for p in fqs]
    low, high = min(lows), max(highs)
    step = (high - low) / (fqs[0].levels - 1)
    zero = round(-low / step)
    for quant, lo, hi in zip(quants, lows, highs):
        n = int(np.floor((hi - lo) / step + 0.5))
        out_low = (round((lo - low) / step) - zero) * step
        quant.set_range(np.float32(lo), np.float32(hi), n + 1, np.float32(out_low), np.float32(out_low + n * step))


def from_ir(graph: IRGraph, activation_quant: bool = True) -> LightweightOpenPose:
    """Build :class:`LightweightOpenPose` with weights, biases and (optionally) activation quantisers
    taken from the OMZ human-pose-estimation-0001 IR; every tensor shape and conv attribute is checked."""
    net = LightweightOpenPose()
    scale = graph.constant(graph.producer(graph.layer("data/scale_value/Fused_Mul_"), 1))
    shift = graph.constant(graph.producer(graph.layer("data/mean_value/Fused_Add_"), 1))
    net.input_scale = torch.tensor(float(scale.reshape(())))
    net.input_shift = torch.as_tensor(shift.reshape(1, 3, 1, 1).astype(np.float32))
    names, units = _ir_conv_names(), _conv_units(net)
    if len(graph.of_type("Convolution", "GroupConvolution")) != len(units):
        raise IRFormatError(f"{graph.source}: expected {len(units)} convolutions for lightweight OpenPose")
    for name, unit in zip(names, units):
        layer = graph.layer(name)
        w = graph.constant(graph.producer(layer, 1))
        if layer.type == "GroupConvolution":  # [groups, cout/g, cin/g, k, k] -> [cout, cin/g, k, k]
            w = w.reshape(w.shape[0] * w.shape[1], *w.shape[2:])
        conv = unit.conv
        attrs = layer.attrs
        expect = (f"{conv.stride[0]},{conv.stride[1]}", f"{conv.dilation[0]},{conv.dilation[1]}",
                  f"{conv.padding[0]},{conv.padding[1]}")
        if tuple(w.shape) != tuple(conv.weight.shape) or expect != (
                attrs["strides"], attrs["dilations"], attrs["pads_begin"]) or attrs["pads_end"] != attrs["pads_begin"]:
            raise IRFormatError(f"{graph.source}: layer {name!r} ({w.shape}, {attrs}) does not match the "
                                f"architecture ({tuple(conv.weight.shape)}, stride/dilation/pad {expect})")
        conv.weight.data = torch.from_numpy(w.astype(np.float32))
        conv.bias.data = torch.from_numpy(_bias_of(graph, layer).astype(np.float32))
        src = graph.producer(layer, 0)
        if activation_quant and src.type == "FakeQuantize":
            _set_quant(graph, unit.quant, src)
    if activation_quant:
        for attr, fq_name in _residual_quant_names():
            _set_quant(graph, net.get_submodule(attr).quant_res, graph.layer(fq_name))
        _set_concat_quant(graph, graph.layer("concat_stage2"),
                          [net.quant_concat_pafs, net.quant_concat_heatmaps, net.init_trunk[0].quant])
    return net.eval()


XML_NAME, BIN_NAME = OMZ_XML_NAME, OMZ_BIN_NAME


def build_omz(files: Mapping[str, bytes]) -> LightweightOpenPose:
    """Registry builder: file bytes by name -> the network, activation quantisation on."""
    return from_ir(read_ir(files[XML_NAME], files[BIN_NAME], source=XML_NAME))
