"""The paper's PAF network (Cao et al., CVPR 2017): VGG-19 (first 10 layers) + 6 two-branch stages, COCO-18.

Layer names are CMU's Caffe names (pose_deploy_linevec.prototxt), grouped as in the widely used
pytorch-openpose port: ``model0`` (VGG-19 conv1_1..conv4_2 + conv4_3_CPM, conv4_4_CPM -> 128
features F at stride 8), ``model1_1``/``model1_2`` (stage 1, branch L1 = 38 PAFs, L2 = 19 heatmaps,
3x3 convs) and ``model{2..6}_{1,2}`` (stages 2-6 on concat(L1, L2, F) = 185 channels, 7x7 convs).
So the module's state_dict keys are e.g. ``model0.conv1_1.weight``, ``model6_2.Mconv7_stage6_L2.bias``.

Weights load from either public format (neither is shipped with posepipe: non-commercial CMU license):
  * pytorch-openpose ``body_pose_model.pth`` (keys without the ``modelX.`` prefix, e.g. ``conv1_1.weight``;
    prefixed keys are accepted too) -- :func:`load_body_pose_pth`, the registered "cmu-vgg19-coco" entry;
  * CMU's ``pose_iter_440000.caffemodel`` (+ optional ``pose_deploy_linevec.prototxt``, checked against
    this architecture) -- :func:`load_caffe`.
Like the Caffe original, the last conv of every branch has no ReLU (pytorch-openpose applies a ReLU
after Mconv7_stage6_L2 by mistake; this module does not).
"""
from __future__ import annotations

import io
from collections import OrderedDict
from typing import Mapping

import numpy as np
import torch
from torch import nn

from pipeline.models.catalog import CMU_NUM_STAGES as NUM_STAGES
from pipeline.models.catalog import CMU_PTH_NAME as PTH_NAME
from pipeline.models.loaders.caffe import read_caffemodel, read_prototxt
from pipeline.skeleton import NUM_HEATMAPS, NUM_PAFS

FEATURES = 128

# (name, in, out, kernel) for convs (padding kernel // 2, stride 1); ("pool...",) for 2x2/2 max pools.
_BACKBONE: tuple[tuple, ...] = (
    ("conv1_1", 3, 64, 3), ("conv1_2", 64, 64, 3), ("pool1_stage1",),
    ("conv2_1", 64, 128, 3), ("conv2_2", 128, 128, 3), ("pool2_stage1",),
    ("conv3_1", 128, 256, 3), ("conv3_2", 256, 256, 3), ("conv3_3", 256, 256, 3), ("conv3_4", 256, 256, 3),
    ("pool3_stage1",),
    ("conv4_1", 256, 512, 3), ("conv4_2", 512, 512, 3), ("conv4_3_CPM", 512, 256, 3), ("conv4_4_CPM", 256, FEATURES, 3),
)


def _branch_layers(stage: int, branch: int) -> tuple[tuple[str, int, int, int], ...]:
    """Conv layers of branch ``branch`` (1 = PAFs, 2 = heatmaps) of ``stage`` (1-6)."""
    out = NUM_PAFS if branch == 1 else NUM_HEATMAPS
    if stage == 1:
        return tuple((f"conv5_{i}_CPM_L{branch}", c_in, c_out, k) for i, (c_in, c_out, k) in enumerate(
            [(FEATURES, 128, 3), (128, 128, 3), (128, 128, 3), (128, 512, 1), (512, out, 1)], start=1))
    c0 = FEATURES + NUM_PAFS + NUM_HEATMAPS
    return tuple((f"Mconv{i}_stage{stage}_L{branch}", c_in, c_out, k) for i, (c_in, c_out, k) in enumerate(
        [(c0, 128, 7), (128, 128, 7), (128, 128, 7), (128, 128, 7), (128, 128, 7), (128, 128, 1), (128, out, 1)],
        start=1))


def _sequential(layers: tuple[tuple, ...], last_linear: bool) -> nn.Sequential:
    mods: list[tuple[str, nn.Module]] = []
    for i, spec in enumerate(layers):
        if len(spec) == 1:
            mods.append((spec[0], nn.MaxPool2d(2, 2)))
            continue
        name, c_in, c_out, k = spec
        mods.append((name, nn.Conv2d(c_in, c_out, k, padding=k // 2)))
        if not (last_linear and i == len(layers) - 1):
            mods.append((f"relu_{name}", nn.ReLU(inplace=True)))
    return nn.Sequential(OrderedDict(mods))


class CmuVgg19PafNet(nn.Module):
    """CMU's COCO-18 PAF network. forward: float32 [N, 3, H, W] BGR, (pixel/256 - 0.5), H and W
    multiples of 8 -> (heatmaps [N, 19, H/8, W/8], pafs [N, 38, H/8, W/8]) of the last stage."""

    def __init__(self) -> None:
        super().__init__()
        self.model0 = _sequential(_BACKBONE, last_linear=False)
        for stage in range(1, NUM_STAGES + 1):
            for branch in (1, 2):
                self.add_module(f"model{stage}_{branch}", _sequential(_branch_layers(stage, branch), last_linear=True))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.model0(x)
        pafs = self.model1_1(features)
        heatmaps = self.model1_2(features)
        for stage in range(2, NUM_STAGES + 1):
            h = torch.cat([pafs, heatmaps, features], dim=1)
            pafs = getattr(self, f"model{stage}_1")(h)
            heatmaps = getattr(self, f"model{stage}_2")(h)
        return heatmaps, pafs


def _conv_names() -> dict[str, str]:
    """Caffe layer name -> module prefix ("conv1_1" -> "model0.conv1_1") for every conv."""
    names = {spec[0]: f"model0.{spec[0]}" for spec in _BACKBONE if len(spec) > 1}
    for stage in range(1, NUM_STAGES + 1):
        for branch in (1, 2):
            names.update({spec[0]: f"model{stage}_{branch}.{spec[0]}" for spec in _branch_layers(stage, branch)})
    return names


def _load(arrays: Mapping[str, np.ndarray | torch.Tensor], source: str) -> CmuVgg19PafNet:
    """A network whose parameters are ``arrays`` ({state_dict key: value}, each key exactly once)."""
    model = CmuVgg19PafNet()
    state = model.state_dict()
    missing = sorted(set(state) - set(arrays))
    unexpected = sorted(set(arrays) - set(state))
    if missing or unexpected:
        raise ValueError(f"{source} does not match the CMU VGG-19 COCO network: missing {missing[:5]}"
                         f"{'...' if len(missing) > 5 else ''} ({len(missing)}), unexpected {unexpected[:5]}"
                         f"{'...' if len(unexpected) > 5 else ''} ({len(unexpected)})")
    loaded = {}
    for key, value in arrays.items():
        t = torch.as_tensor(np.asarray(value, dtype=np.float32)) if not isinstance(value, torch.Tensor) else value
        if t.numel() != state[key].numel():
            raise ValueError(f"{source}: {key} has shape {tuple(t.shape)}, expected {tuple(state[key].shape)}")
        loaded[key] = t.detach().to(torch.float32).reshape(state[key].shape)
    model.load_state_dict(loaded)
    return model


def load_body_pose_pth(data: bytes) -> CmuVgg19PafNet:
    """Network from pytorch-openpose ``body_pose_model.pth`` bytes (a state dict keyed ``conv1_1.weight``
    ... ``Mconv7_stage6_L2.bias``; ``model0.conv1_1.weight``-style keys are accepted as well)."""
    try:
        raw = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"{PTH_NAME} is not a readable torch state dict: {exc}") from exc
    if not isinstance(raw, Mapping):
        raise ValueError(f"{PTH_NAME} holds a {type(raw).__name__}, expected a state dict")
    prefix = _conv_names()
    arrays = {}
    for key, value in raw.items():
        layer, _, param = key.rpartition(".")
        arrays[f"{prefix[layer]}.{param}" if layer in prefix else key] = value
    return _load(arrays, PTH_NAME)


def load_caffe(caffemodel: bytes, prototxt: str | None = None) -> CmuVgg19PafNet:
    """Network from CMU's ``pose_iter_440000.caffemodel`` bytes. When the deploy ``prototxt`` text is
    given, its Convolution layers (names, kernel, pad, stride, outputs) must match this architecture."""
    convs = _conv_names()
    if prototxt is not None:
        expected = {spec[0]: spec for spec in _BACKBONE if len(spec) > 1}
        for stage in range(1, NUM_STAGES + 1):
            for branch in (1, 2):
                expected.update({spec[0]: spec for spec in _branch_layers(stage, branch)})
        found = {layer.name: layer for layer in read_prototxt(prototxt) if layer.type == "Convolution"}
        if set(found) != set(expected):
            raise ValueError(f"prototxt convolutions differ from the CMU VGG-19 COCO network: "
                             f"extra {sorted(set(found) - set(expected))[:5]}, missing {sorted(set(expected) - set(found))[:5]}")
        for name, (_, _, c_out, k) in expected.items():
            layer = found[name]
            if (layer.num_output, layer.kernel, layer.pad, layer.stride) != (c_out, (k, k), (k // 2, k // 2), (1, 1)):
                raise ValueError(f"prototxt layer {name!r}: {layer} differs from the expected "
                                 f"{c_out} outputs, kernel {k}, pad {k // 2}, stride 1")
    arrays = {}
    for name, blobs in read_caffemodel(caffemodel).items():
        if name not in convs:
            raise ValueError(f"caffemodel layer {name!r} with weights is not part of the CMU VGG-19 COCO network")
        if len(blobs) != 2:
            raise ValueError(f"caffemodel layer {name!r} has {len(blobs)} blobs, expected weight and bias")
        arrays[f"{convs[name]}.weight"], arrays[f"{convs[name]}.bias"] = blobs
    return _load(arrays, "caffemodel")


def build_cmu(files: Mapping[str, bytes]) -> CmuVgg19PafNet:
    """Registry builder: the network from the entry's ``body_pose_model.pth``."""
    return load_body_pose_pth(files[PTH_NAME])

