"""Read a TensorFlow frozen GraphDef (.pb) into a :class:`~pipeline.models.graph_module.Graph`.

Parses with ``tensorboard.compat.proto.graph_pb2`` -- no TensorFlow at run time. Supported ops:
Placeholder, Const, Identity, Conv2D, DepthwiseConv2dNative, BiasAdd, FusedBatchNorm(V3), Relu,
Relu6, MaxPool, ConcatV2, Add/AddV2, ResizeBilinear (size given as a constant or as
``StridedSlice(Shape(t))[1:3]``, i.e. "the spatial size of t"). NHWC is converted to NCHW.

BiasAdd and inference-mode FusedBatchNorm that directly follow a convolution are folded into
it. FusedBatchNorm with ``is_training=True`` (batch statistics) becomes a per-image
``instance_norm``: the result TF gives for a batch of one image, independent of batch mates.
"""
from __future__ import annotations

import numpy as np

from pipeline.models.graph_module import Graph, GraphOp

_DTYPES = {1: np.float32, 3: np.int32, 9: np.int64}
_NHWC_TO_NCHW_AXIS = {0: 0, 1: 2, 2: 3, 3: 1, -1: 1}


def _name(ref: str) -> str:
    """Node name of an input reference ("x:0" -> "x"); control inputs ("^x") are dropped earlier."""
    return ref.split(":")[0]


def _const(node) -> np.ndarray:
    t = node.attr["value"].tensor
    if t.dtype not in _DTYPES:
        raise ValueError(f"Const {node.name!r}: unsupported dtype enum {t.dtype}")
    dtype = _DTYPES[t.dtype]
    shape = [d.size for d in t.tensor_shape.dim]
    if t.tensor_content:
        return np.frombuffer(t.tensor_content, dtype).reshape(shape).copy()
    vals = list(t.float_val) if dtype == np.float32 else list(t.int_val) or list(t.int64_val)
    n = int(np.prod(shape)) if shape else 1
    if n and len(vals) == 1:
        return np.full(shape, vals[0], dtype)
    return np.asarray(vals, dtype).reshape(shape)


def _pair(ints) -> tuple[int, int]:
    """(h, w) from an NHWC 4-list attr such as strides/dilations/ksize."""
    ints = list(ints) or [1, 1, 1, 1]
    return int(ints[1]), int(ints[2])


def _topological(nodes) -> list:
    """Nodes ordered so that every node follows its inputs (frozen graphs need not be sorted)."""
    by_name = {n.name: n for n in nodes}
    order, state = [], {}
    for root in nodes:
        stack = [(root, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                state[node.name] = 2
                order.append(node)
                continue
            if state.get(node.name):
                continue
            state[node.name] = 1
            stack.append((node, True))
            for r in node.input:
                dep = by_name[_name(r.lstrip("^"))]
                if not state.get(dep.name):
                    stack.append((dep, False))
    return order


def parse_graphdef(data: bytes, input_name: str = "image", output_name: str = "Openpose/concat_stage7") -> Graph:
    """Convert frozen GraphDef bytes to a Graph whose input is ``input_name`` (NHWC float32 in TF,
    NCHW here) and whose output is ``output_name``. Raises ValueError naming any unsupported op."""
    from tensorboard.compat.proto import graph_pb2

    gd = graph_pb2.GraphDef()
    gd.ParseFromString(data)
    nodes = {n.name: n for n in gd.node}
    if input_name not in nodes or output_name not in nodes:
        raise ValueError(f"GraphDef has no node {input_name!r} or {output_name!r}")
    consumers: dict[str, int] = {}
    for n in gd.node:
        for ref in n.input:
            if not ref.startswith("^"):
                consumers[_name(ref)] = consumers.get(_name(ref), 0) + 1

    consts: dict[str, np.ndarray] = {}
    alias: dict[str, str] = {}  # node name -> tensor name in the Graph (for folded / identity nodes)
    producer: dict[str, GraphOp] = {}
    shapes_of: dict[str, str] = {}  # Shape node -> the tensor it measures
    size_like: dict[str, str] = {}  # StridedSlice(Shape(t), [1], [3]) node -> t
    ops: list[GraphOp] = []

    def ref(r: str) -> str:
        n = _name(r)
        return alias.get(n, n)

    def foldable_conv(r: str) -> GraphOp | None:
        """The conv op writing ``r`` if ``r`` has no other consumer (so BiasAdd/BatchNorm can fold into it)."""
        op = producer.get(ref(r))
        if op is not None and op.kind == "conv" and consumers.get(_name(r), 0) == 1 and op.output == ref(r):
            return op
        return None

    for node in _topological(gd.node):
        name, kind = node.name, node.op
        inputs = [i for i in node.input if not i.startswith("^")]
        attr = node.attr
        if kind == "Const":
            consts[name] = _const(node)
        elif kind == "Placeholder":
            if name != input_name:
                raise ValueError(f"unexpected extra graph input {name!r}")
        elif kind == "Identity":
            if _name(inputs[0]) in consts:
                consts[name] = consts[_name(inputs[0])]
            else:
                alias[name] = ref(inputs[0])
        elif kind in ("Conv2D", "DepthwiseConv2dNative"):
            if attr["data_format"].s not in (b"", b"NHWC"):
                raise ValueError(f"{name}: only NHWC graphs are supported")
            w = consts[_name(inputs[1])]
            if kind == "Conv2D":  # HWIO -> OIHW
                weight, groups = w.transpose(3, 2, 0, 1), 1
            else:  # HW C M -> (C*M) 1 H W, output channel c*M + m
                kh, kw, c, m = w.shape
                weight, groups = w.reshape(kh, kw, c * m).transpose(2, 0, 1)[:, None], c
            op = GraphOp("conv", (ref(inputs[0]),), name, {"weight": weight.astype(np.float32)},
                         {"stride": _pair(attr["strides"].list.i),
                          "dilation": _pair(attr["dilations"].list.i) if "dilations" in attr else (1, 1),
                          "padding": attr["padding"].s.decode(), "groups": groups})
            ops.append(op)
            producer[name] = op
        elif kind == "BiasAdd":
            op = foldable_conv(inputs[0])
            if op is None or "bias" in op.weights:
                raise ValueError(f"{name}: BiasAdd not directly after a convolution is unsupported")
            op.weights["bias"] = consts[_name(inputs[1])].astype(np.float32)
            op.output = name
            alias[_name(inputs[0])] = name
            producer[name] = op
        elif kind in ("FusedBatchNorm", "FusedBatchNormV3"):
            gamma, beta, mean, var = (consts[_name(i)] for i in inputs[1:5])
            eps = attr["epsilon"].f
            if attr["is_training"].b:
                op = GraphOp("instance_norm", (ref(inputs[0]),), name, {"weight": gamma, "bias": beta}, {"eps": eps})
                ops.append(op)
                producer[name] = op
                continue
            op = foldable_conv(inputs[0])
            if op is None:
                raise ValueError(f"{name}: inference FusedBatchNorm not directly after a convolution is unsupported")
            s = (gamma / np.sqrt(var + eps)).astype(np.float32)
            bias = op.weights.get("bias", np.zeros_like(s))
            op.weights["weight"] = op.weights["weight"] * s[:, None, None, None]
            op.weights["bias"] = ((bias - mean) * s + beta).astype(np.float32)
            op.output = name
            alias[_name(inputs[0])] = name
            producer[name] = op
        elif kind in ("Relu", "Relu6"):
            ops.append(GraphOp(kind.lower(), (ref(inputs[0]),), name))
        elif kind in ("Add", "AddV2"):
            ops.append(GraphOp("add", (ref(inputs[0]), ref(inputs[1])), name))
        elif kind == "MaxPool":
            ops.append(GraphOp("max_pool", (ref(inputs[0]),), name, {},
                               {"kernel": _pair(attr["ksize"].list.i), "stride": _pair(attr["strides"].list.i),
                                "padding": attr["padding"].s.decode()}))
        elif kind == "ConcatV2":
            axis = int(consts[_name(inputs[-1])])
            ops.append(GraphOp("concat", tuple(ref(i) for i in inputs[:-1]), name, {},
                               {"dim": _NHWC_TO_NCHW_AXIS[axis]}))
        elif kind == "Shape":
            shapes_of[name] = ref(inputs[0])
        elif kind == "StridedSlice":
            begin, end, strides = (consts[_name(i)].tolist() for i in inputs[1:4])
            if _name(inputs[0]) not in shapes_of or (begin, end, strides) != ([1], [3], [1]):
                raise ValueError(f"{name}: only StridedSlice(Shape(t), [1], [3]) (spatial size) is supported")
            size_like[name] = shapes_of[_name(inputs[0])]
        elif kind == "ResizeBilinear":
            attrs = {"align_corners": attr["align_corners"].b,
                     "half_pixel_centers": attr["half_pixel_centers"].b if "half_pixel_centers" in attr else False}
            size_ref = _name(inputs[1])
            if size_ref in size_like:
                ops.append(GraphOp("resize_bilinear", (ref(inputs[0]), size_like[size_ref]), name, {}, attrs))
            else:
                attrs["size"] = tuple(int(v) for v in consts[size_ref])
                ops.append(GraphOp("resize_bilinear", (ref(inputs[0]),), name, {}, attrs))
        else:
            raise ValueError(f"unsupported TF op {kind!r} (node {name!r})")
    return Graph(input=input_name, output=alias.get(output_name, output_name), ops=ops)
