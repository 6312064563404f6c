"""PINTO MobileNet-v2 dm14, read from its TFLite flatbuffer (INT8 weights dequantised), vs the TFLite runtime.

The file's CONV_2D ops take INT8 weights directly, so TFLite runs "hybrid" kernels that also quantise
activations on the fly; its two CPU kernel sets (default XNNPACK and builtin) disagree with each
other by up to 0.11. The converted float32 module (exact dequantised weights, float activations)
must stay closer to the default runtime than that disagreement.
Measured: max |torch - TFLite XNNPACK| = 0.044, mean 0.0012; max |TFLite builtin - XNNPACK| = 0.112.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import pipeline.models as models
from pipeline.models.loaders.tflite_flatbuffer import parse_tflite

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REF = Path(__file__).resolve().parents[1] / "data" / "reference"
MAX_BOUND, MEAN_BOUND = 0.06, 3e-3


def test_matches_tflite_runtime_output():
    image = np.load(REF / "tf_input_apink3_432x368.npz")["image"]
    ref = np.load(REF / "pinto_mobilenet_v2_dm14.npz")
    expected, builtin = ref["out"].astype(np.float32), ref["out_builtin_kernels"].astype(np.float32)
    x = torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1)[None]
    with torch.no_grad():
        hm, paf = models.load_model("pinto-mobilenet-v2-dm14")(x)
    assert hm.shape == (1, 19, 46, 54) and paf.shape == (1, 38, 46, 54)
    got = torch.cat([hm, paf], 1)[0].permute(1, 2, 0).numpy()
    err = np.abs(got - expected)
    runtime_spread = np.abs(builtin - expected).max()
    assert err.max() < MAX_BOUND and err.mean() < MEAN_BOUND, (err.max(), err.mean())
    assert err.max() < runtime_spread
    # the strongest heatmap cell of every part channel is the same cell TFLite picks (or ties within 0.02)
    for c in range(19):
        i = np.unravel_index(got[..., c].argmax(), got.shape[:2])
        assert expected[..., c][i] >= expected[..., c].max() - 0.02


def test_weights_are_dequantised_int8_and_entry():
    data = (Path(models.default_model_dir()) / "pinto-mobilenet-v2-dm14"
            / "mobilenet_v2_pose_dm14_368_432_weight_quant.tflite").read_bytes()
    graph = parse_tflite(data)
    first = graph.ops[0]
    assert first.kind == "conv" and first.weights["weight"].shape == (48, 3, 3, 3)
    # int8 symmetric per-tensor: every weight is an integer multiple of one scale, |q| <= 127
    w = first.weights["weight"]
    scale = np.abs(w).max() / 127
    q = w / scale
    assert np.abs(q - np.round(q)).max() < 1e-3
    entry = models.get("pinto-mobilenet-v2-dm14")
    assert entry.preprocessing.input_size == (432, 368) and entry.published_ap is None and entry.license == "MIT"


def test_bad_file_is_rejected_clearly():
    with pytest.raises(ValueError, match="not a TFLite flatbuffer"):
        parse_tflite(b"not a flatbuffer at all")


def tflite_with_one_tensor(q: np.ndarray, scales: np.ndarray, zero_points: np.ndarray, axis: int) -> bytes:
    """A minimal TFLite flatbuffer holding one constant INT8 tensor ``q`` with per-channel quantisation."""
    import flatbuffers
    from tflite.Buffer import BufferAddData, BufferEnd, BufferStart
    from tflite.Model import (ModelAddBuffers, ModelAddOperatorCodes, ModelAddSubgraphs, ModelAddVersion,
                              ModelEnd, ModelStart)
    from tflite.QuantizationParameters import (QuantizationParametersAddQuantizedDimension,
                                               QuantizationParametersAddScale, QuantizationParametersAddZeroPoint,
                                               QuantizationParametersEnd, QuantizationParametersStart)
    from tflite.SubGraph import SubGraphAddTensors, SubGraphEnd, SubGraphStart
    from tflite.Tensor import (TensorAddBuffer, TensorAddName, TensorAddQuantization, TensorAddShape, TensorAddType,
                               TensorEnd, TensorStart)
    from tflite.TensorType import TensorType

    b = flatbuffers.Builder(1024)

    def vector(items):
        b.StartVector(4, len(items), 4)
        for off in reversed(items):
            b.PrependUOffsetTRelative(off)
        return b.EndVector()

    data = b.CreateNumpyVector(q.astype(np.int8).view(np.uint8).ravel())
    BufferStart(b)
    empty = BufferEnd(b)
    BufferStart(b)
    BufferAddData(b, data)
    filled = BufferEnd(b)
    scale_v = b.CreateNumpyVector(scales.astype(np.float32))
    zp_v = b.CreateNumpyVector(zero_points.astype(np.int64))
    QuantizationParametersStart(b)
    QuantizationParametersAddScale(b, scale_v)
    QuantizationParametersAddZeroPoint(b, zp_v)
    QuantizationParametersAddQuantizedDimension(b, axis)
    quant = QuantizationParametersEnd(b)
    name = b.CreateString("w")
    shape = b.CreateNumpyVector(np.asarray(q.shape, np.int32))
    TensorStart(b)
    TensorAddShape(b, shape)
    TensorAddType(b, TensorType.INT8)
    TensorAddBuffer(b, 1)
    TensorAddName(b, name)
    TensorAddQuantization(b, quant)
    tensor = TensorEnd(b)
    tensors = vector([tensor])
    SubGraphStart(b)
    SubGraphAddTensors(b, tensors)
    subgraph = SubGraphEnd(b)
    subgraphs, buffers, codes = vector([subgraph]), vector([empty, filled]), vector([])
    ModelStart(b)
    ModelAddVersion(b, 3)
    ModelAddOperatorCodes(b, codes)
    ModelAddSubgraphs(b, subgraphs)
    ModelAddBuffers(b, buffers)
    b.Finish(ModelEnd(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def test_per_channel_int8_dequantisation():
    from pipeline.models.loaders.tflite_flatbuffer import _Reader
    q = np.arange(-12, 12, dtype=np.int8).reshape(3, 2, 2, 2)  # O H W I, channel axis 0
    scales, zps = np.array([0.5, 0.25, 2.0]), np.array([0, 1, -2])
    reader = _Reader(tflite_with_one_tensor(q, scales, zps, axis=0))
    expected = (q.astype(np.float32) - zps[:, None, None, None]) * scales[:, None, None, None]
    np.testing.assert_array_equal(reader.float_value(0), expected.astype(np.float32))
