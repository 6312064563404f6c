"""Read Caffe .caffemodel weights and .prototxt layer definitions without Caffe.

The handful of caffe.proto messages needed (NetParameter, LayerParameter, BlobProto, BlobShape,
ConvolutionParameter, PoolingParameter, with caffe.proto's field numbers) are declared here with
``google.protobuf.descriptor_pb2`` and turned into message classes at import time; every other
field of a real file is skipped as unknown. Only the current ``layer`` list (NetParameter field
100) is read; files with only the deprecated V1 ``layers`` list are rejected with a clear error.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format

_F = descriptor_pb2.FieldDescriptorProto


def _build_classes() -> dict[str, type]:
    fdp = descriptor_pb2.FileDescriptorProto(name="posepipe_caffe_subset.proto", package="caffe", syntax="proto2")

    def message(name: str, fields: list[tuple[str, int, int, int, str | None, bool]]) -> None:
        msg = fdp.message_type.add(name=name)
        for fname, number, ftype, label, type_name, packed in fields:
            f = msg.field.add(name=fname, number=number, type=ftype, label=label)
            if type_name:
                f.type_name = type_name
            if packed:
                f.options.packed = True

    opt, rep = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED
    message("BlobShape", [("dim", 1, _F.TYPE_INT64, rep, None, True)])
    message("BlobProto", [
        ("num", 1, _F.TYPE_INT32, opt, None, False), ("channels", 2, _F.TYPE_INT32, opt, None, False),
        ("height", 3, _F.TYPE_INT32, opt, None, False), ("width", 4, _F.TYPE_INT32, opt, None, False),
        ("data", 5, _F.TYPE_FLOAT, rep, None, True), ("shape", 7, _F.TYPE_MESSAGE, opt, ".caffe.BlobShape", False),
        ("double_data", 8, _F.TYPE_DOUBLE, rep, None, True),
    ])
    message("ConvolutionParameter", [
        ("num_output", 1, _F.TYPE_UINT32, opt, None, False), ("bias_term", 2, _F.TYPE_BOOL, opt, None, False),
        ("pad", 3, _F.TYPE_UINT32, rep, None, False), ("kernel_size", 4, _F.TYPE_UINT32, rep, None, False),
        ("group", 5, _F.TYPE_UINT32, opt, None, False), ("stride", 6, _F.TYPE_UINT32, rep, None, False),
        ("pad_h", 9, _F.TYPE_UINT32, opt, None, False), ("pad_w", 10, _F.TYPE_UINT32, opt, None, False),
        ("kernel_h", 11, _F.TYPE_UINT32, opt, None, False), ("kernel_w", 12, _F.TYPE_UINT32, opt, None, False),
        ("stride_h", 13, _F.TYPE_UINT32, opt, None, False), ("stride_w", 14, _F.TYPE_UINT32, opt, None, False),
        ("dilation", 18, _F.TYPE_UINT32, rep, None, False),
    ])
    message("PoolingParameter", [  # "pool" (an enum, MAX/AVE) is left out: it is skipped as unknown
        ("kernel_size", 2, _F.TYPE_UINT32, opt, None, False),
        ("stride", 3, _F.TYPE_UINT32, opt, None, False), ("pad", 4, _F.TYPE_UINT32, opt, None, False),
    ])
    message("LayerParameter", [
        ("name", 1, _F.TYPE_STRING, opt, None, False), ("type", 2, _F.TYPE_STRING, opt, None, False),
        ("bottom", 3, _F.TYPE_STRING, rep, None, False), ("top", 4, _F.TYPE_STRING, rep, None, False),
        ("blobs", 7, _F.TYPE_MESSAGE, rep, ".caffe.BlobProto", False),
        ("convolution_param", 106, _F.TYPE_MESSAGE, opt, ".caffe.ConvolutionParameter", False),
        ("pooling_param", 121, _F.TYPE_MESSAGE, opt, ".caffe.PoolingParameter", False),
    ])
    message("NetParameter", [
        ("name", 1, _F.TYPE_STRING, opt, None, False),
        ("layers", 2, _F.TYPE_BYTES, rep, None, False),  # deprecated V1 layers: only detected
        ("input", 3, _F.TYPE_STRING, rep, None, False),
        ("layer", 100, _F.TYPE_MESSAGE, rep, ".caffe.LayerParameter", False),
    ])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return {m.name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"caffe.{m.name}"))
            for m in fdp.message_type}


_CLASSES = _build_classes()
NetParameter = _CLASSES["NetParameter"]


@dataclass(frozen=True)
class CaffeLayer:
    """One layer of a .prototxt: name, type, bottom/top blob names, and for Convolution layers
    (num_output, kernel (h, w), stride (h, w), pad (h, w), dilation, group); for Pooling layers
    (kernel, stride, pad) in ``kernel``/``stride``/``pad`` with num_output 0."""

    name: str
    type: str
    bottom: tuple[str, ...]
    top: tuple[str, ...]
    num_output: int = 0
    kernel: tuple[int, int] = (0, 0)
    stride: tuple[int, int] = (1, 1)
    pad: tuple[int, int] = (0, 0)
    dilation: int = 1
    group: int = 1


def _hw(repeated, h: int, w: int, default: int) -> tuple[int, int]:
    if h or w:
        return int(h), int(w)
    vals = list(repeated)
    if not vals:
        return default, default
    return (int(vals[0]), int(vals[-1]))


def _layer(lp) -> CaffeLayer:
    base = dict(name=lp.name, type=lp.type, bottom=tuple(lp.bottom), top=tuple(lp.top))
    if lp.type == "Convolution":
        c = lp.convolution_param
        return CaffeLayer(**base, num_output=int(c.num_output), kernel=_hw(c.kernel_size, c.kernel_h, c.kernel_w, 0),
                          stride=_hw(c.stride, c.stride_h, c.stride_w, 1), pad=_hw(c.pad, c.pad_h, c.pad_w, 0),
                          dilation=int(c.dilation[0]) if len(c.dilation) else 1, group=int(c.group or 1))
    if lp.type == "Pooling":
        p = lp.pooling_param
        return CaffeLayer(**base, kernel=(int(p.kernel_size),) * 2, stride=(int(p.stride or 1),) * 2, pad=(int(p.pad),) * 2)
    return CaffeLayer(**base)


def read_prototxt(text: str) -> list[CaffeLayer]:
    """Layers of a Caffe .prototxt (protobuf text format), in file order."""
    net = NetParameter()
    try:
        text_format.Parse(text, net, allow_unknown_field=True)
    except text_format.ParseError as exc:
        raise ValueError(f"not a valid Caffe prototxt: {exc}") from exc
    if not net.layer:
        raise ValueError("prototxt has no 'layer { ... }' entries (old V1 'layers' format is not supported)")
    return [_layer(lp) for lp in net.layer]


def read_caffemodel(data: bytes) -> dict[str, list[np.ndarray]]:
    """Weights of a binary .caffemodel: {layer name: [blob arrays, float32, in Caffe shape]} for every
    layer that has blobs (Convolution: [weight [O, I/group, kh, kw], bias [O]])."""
    net = NetParameter()
    try:
        net.ParseFromString(data)
    except Exception as exc:  # protobuf's DecodeError
        raise ValueError(f"not a valid Caffe .caffemodel (protobuf NetParameter): {exc}") from exc
    if not net.layer and net.layers:
        raise ValueError("this .caffemodel uses the deprecated V1 'layers' format; upgrade it with Caffe's "
                         "upgrade_net_proto_binary tool first")
    out: dict[str, list[np.ndarray]] = {}
    for lp in net.layer:
        blobs = []
        for b in lp.blobs:
            shape = list(b.shape.dim) if b.HasField("shape") else [d for d in (b.num, b.channels, b.height, b.width)]
            values = np.asarray(b.data if len(b.data) else b.double_data, dtype=np.float32)
            if values.size != int(np.prod(shape)):
                raise ValueError(f"layer {lp.name!r}: blob has {values.size} values for shape {shape}")
            blobs.append(values.reshape(shape))
        if blobs:
            out[lp.name] = blobs
    return out
