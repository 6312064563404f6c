"""Read a TFLite flatbuffer (.tflite) into a :class:`~pipeline.models.graph_module.Graph`.

Uses the pure-Python flatbuffer accessors of the ``tflite`` package -- no TFLite runtime.
Supported builtin ops: CONV_2D, DEPTHWISE_CONV_2D, ADD, CONCATENATION, RESIZE_BILINEAR,
DEQUANTIZE, MAX_POOL_2D, with fused RELU / RELU6. Float32 activations; INT8/UINT8 weights with
per-tensor or per-channel (scale, zero point) are dequantised to float32 at load time
(``(q - zero_point) * scale``), whether the graph routes them through a DEQUANTIZE op or feeds
them to a convolution directly (hybrid kernels). NHWC is converted to NCHW.
"""
from __future__ import annotations

import numpy as np
import tflite

from pipeline.models.graph_module import Graph, GraphOp

_NUMPY = {tflite.TensorType.FLOAT32: np.float32, tflite.TensorType.INT32: np.int32,
          tflite.TensorType.INT8: np.int8, tflite.TensorType.UINT8: np.uint8,
          tflite.TensorType.INT64: np.int64}
_OPNAMES = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
_ACTIVATION = {tflite.ActivationFunctionType.NONE: None, tflite.ActivationFunctionType.RELU: "relu",
               tflite.ActivationFunctionType.RELU6: "relu6"}
_PADDING = {tflite.Padding.SAME: "SAME", tflite.Padding.VALID: "VALID"}
_NHWC_TO_NCHW_AXIS = {0: 0, 1: 2, 2: 3, 3: 1, -1: 1}


class _Reader:
    def __init__(self, data: bytes) -> None:
        if len(data) < 8 or data[4:8] != b"TFL3":
            raise ValueError("not a TFLite flatbuffer (file identifier 'TFL3' missing at bytes 4-8)")
        self.model = tflite.Model.GetRootAsModel(data, 0)
        if self.model.SubgraphsLength() != 1:
            raise ValueError(f"expected one subgraph, found {self.model.SubgraphsLength()}")
        self.sg = self.model.Subgraphs(0)

    def name(self, t: int) -> str:
        return self.sg.Tensors(t).Name().decode()

    def value(self, t: int) -> np.ndarray:
        """Constant tensor ``t`` as stored (quantised integers stay integers)."""
        tensor = self.sg.Tensors(t)
        buf = self.model.Buffers(tensor.Buffer())
        if buf.DataLength() == 0:
            raise ValueError(f"tensor {self.name(t)!r} is not a constant")
        dtype = _NUMPY[tensor.Type()]
        return buf.DataAsNumpy().view(dtype).reshape(tensor.ShapeAsNumpy()).copy()

    def float_value(self, t: int) -> np.ndarray:
        """Constant tensor ``t`` as float32, dequantised if it is INT8/UINT8."""
        v = self.value(t)
        if v.dtype == np.float32:
            return v
        q = self.sg.Tensors(t).Quantization()
        if q is None or q.ScaleLength() == 0:
            raise ValueError(f"integer tensor {self.name(t)!r} has no quantisation scale")
        shape = [1] * v.ndim
        shape[q.QuantizedDimension()] = -1
        scale = q.ScaleAsNumpy().astype(np.float32)
        zero = q.ZeroPointAsNumpy().astype(np.float32) if q.ZeroPointLength() else np.zeros_like(scale)
        if scale.size > 1:
            scale, zero = scale.reshape(shape), zero.reshape(shape)
        return ((v.astype(np.float32) - zero) * scale).astype(np.float32)

    def options(self, op, cls):
        opts = cls()
        table = op.BuiltinOptions()
        opts.Init(table.Bytes, table.Pos)
        return opts


def parse_tflite(data: bytes) -> Graph:
    """Convert TFLite flatbuffer bytes to a Graph (NCHW input/output named after the model's
    tensors). Raises ValueError naming any unsupported op or tensor type."""
    r = _Reader(data)
    sg = r.sg
    codes = [r.model.OperatorCodes(i) for i in range(r.model.OperatorCodesLength())]
    dequantised: dict[int, np.ndarray] = {}  # DEQUANTIZE outputs are constants: fold them
    ops: list[GraphOp] = []

    def weight(t: int) -> np.ndarray:
        return dequantised[t] if t in dequantised else r.float_value(t)

    def emit(op: GraphOp, activation: int) -> None:
        if activation not in _ACTIVATION:
            raise ValueError(f"{op.output}: unsupported fused activation {activation}")
        act = _ACTIVATION[activation]
        if act is None:
            ops.append(op)
            return
        final = op.output
        op.output = final + "/pre_activation"
        ops.extend([op, GraphOp(act, (op.output,), final)])

    for i in range(sg.OperatorsLength()):
        op = sg.Operators(i)
        code = codes[op.OpcodeIndex()]
        kind = _OPNAMES.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "?")
        ins = [int(t) for t in op.InputsAsNumpy()]
        out = r.name(int(op.OutputsAsNumpy()[0]))
        if kind == "DEQUANTIZE":
            dequantised[int(op.OutputsAsNumpy()[0])] = r.float_value(ins[0])
        elif kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            w = weight(ins[1])
            if kind == "CONV_2D":  # O H W I -> O I H W
                o = r.options(op, tflite.Conv2DOptions)
                weight_t, groups = w.transpose(0, 3, 1, 2), 1
            else:  # 1 H W (C*M) -> (C*M) 1 H W
                o = r.options(op, tflite.DepthwiseConv2DOptions)
                weight_t = w.transpose(3, 0, 1, 2)
                groups = w.shape[3] // o.DepthMultiplier()
            weights = {"weight": weight_t}
            if len(ins) > 2 and ins[2] >= 0:
                weights["bias"] = weight(ins[2])
            emit(GraphOp("conv", (r.name(ins[0]),), out, weights,
                         {"stride": (o.StrideH(), o.StrideW()),
                          "dilation": (o.DilationHFactor(), o.DilationWFactor()),
                          "padding": _PADDING[o.Padding()], "groups": groups}),
                 o.FusedActivationFunction())
        elif kind == "ADD":
            o = r.options(op, tflite.AddOptions)
            emit(GraphOp("add", (r.name(ins[0]), r.name(ins[1])), out), o.FusedActivationFunction())
        elif kind == "CONCATENATION":
            o = r.options(op, tflite.ConcatenationOptions)
            emit(GraphOp("concat", tuple(r.name(t) for t in ins), out, {},
                         {"dim": _NHWC_TO_NCHW_AXIS[o.Axis()]}), o.FusedActivationFunction())
        elif kind == "MAX_POOL_2D":
            o = r.options(op, tflite.Pool2DOptions)
            emit(GraphOp("max_pool", (r.name(ins[0]),), out, {},
                         {"kernel": (o.FilterHeight(), o.FilterWidth()), "stride": (o.StrideH(), o.StrideW()),
                          "padding": _PADDING[o.Padding()]}), o.FusedActivationFunction())
        elif kind == "RESIZE_BILINEAR":
            o = r.options(op, tflite.ResizeBilinearOptions)
            ops.append(GraphOp("resize_bilinear", (r.name(ins[0]),), out, {},
                               {"size": tuple(int(v) for v in r.value(ins[1])),
                                "align_corners": bool(o.AlignCorners()),
                                "half_pixel_centers": bool(o.HalfPixelCenters())}))
        else:
            raise ValueError(f"unsupported TFLite op {kind} (output tensor {out!r})")
    if sg.InputsLength() != 1 or sg.OutputsLength() != 1:
        raise ValueError("expected a model with one input and one output tensor")
    return Graph(input=r.name(int(sg.Inputs(0))), output=r.name(int(sg.Outputs(0))), ops=ops)
