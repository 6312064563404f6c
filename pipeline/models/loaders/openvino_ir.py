"""Read an OpenVINO IR v10 model (``.xml`` graph + ``.bin`` weights) with the standard library and numpy.

No OpenVINO runtime is needed. :func:`read_ir` parses the graph; :meth:`IRGraph.constant` folds
constant sub-graphs (e.g. the ``u8 Const -> Convert -> FakeQuantize`` chains of an INT8 export,
which dequantise weights to float32) and :meth:`IRGraph.fake_quantize_params` returns the ranges of
an activation ``FakeQuantize`` so an architecture module can reproduce it.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

import numpy as np

_ELEMENT_TYPES = {
    "f16": np.float16, "f32": np.float32, "f64": np.float64,
    "u8": np.uint8, "i8": np.int8, "i32": np.int32, "i64": np.int64, "u64": np.uint64,
}


class IRFormatError(ValueError):
    """The IR file is malformed or uses something this reader does not support."""


@dataclass
class IRLayer:
    """One ``<layer>``: id, name, type, ``<data>`` attributes and output shapes by port id."""

    id: str
    name: str
    type: str
    attrs: dict[str, str]
    input_ports: list[str]
    output_shapes: dict[str, tuple[int, ...]]
    inputs: list[tuple[str, str]] = field(default_factory=list)  # (producer layer id, producer port) per input port
    consumers: list[str] = field(default_factory=list)  # ids of layers reading any output


@dataclass(frozen=True)
class FakeQuantizeParams:
    """Ranges of an OpenVINO FakeQuantize (arrays broadcastable to the quantised tensor)."""

    input_low: np.ndarray
    input_high: np.ndarray
    output_low: np.ndarray
    output_high: np.ndarray
    levels: int


def fake_quantize(x: np.ndarray, p: FakeQuantizeParams) -> np.ndarray:
    """OpenVINO FakeQuantize (opset1) semantics in numpy float32 (round half away from zero)."""
    x = x.astype(np.float32)
    lo, hi = p.input_low.astype(np.float32), p.input_high.astype(np.float32)
    olo, ohi = p.output_low.astype(np.float32), p.output_high.astype(np.float32)
    q = np.round((np.clip(x, lo, hi) - lo) / (hi - lo) * (p.levels - 1))
    out = q / (p.levels - 1) * (ohi - olo) + olo
    out = np.where(x <= np.minimum(lo, hi), olo, out)
    return np.where(x > np.maximum(lo, hi), ohi, out).astype(np.float32)


class IRGraph:
    """A parsed IR v10 graph with constant folding over its ``.bin`` weights."""

    def __init__(self, xml_bytes: bytes, bin_bytes: bytes, source: str = "<ir>"):
        self.source = source
        try:
            root = ET.fromstring(xml_bytes)
        except ET.ParseError as exc:
            raise IRFormatError(f"{source}: not a valid IR .xml file ({exc})") from exc
        if root.tag != "net" or root.get("version") not in ("10", "11"):
            raise IRFormatError(f"{source}: expected <net version=\"10\"> (OpenVINO IR v10), got <{root.tag} "
                                f"version={root.get('version')!r}>")
        self.name = root.get("name", "")
        self._bin = bin_bytes
        self.layers: dict[str, IRLayer] = {}
        for el in root.find("layers"):
            data = el.find("data")
            inp = el.find("input")
            out = el.find("output")
            self.layers[el.get("id")] = IRLayer(
                id=el.get("id"), name=el.get("name"), type=el.get("type"),
                attrs=dict(data.attrib) if data is not None else {},
                input_ports=[p.get("id") for p in inp] if inp is not None else [],
                output_shapes={p.get("id"): tuple(int(d.text) for d in p.findall("dim"))
                               for p in out} if out is not None else {},
            )
        for layer in self.layers.values():
            layer.inputs = [("", "")] * len(layer.input_ports)
        for e in root.find("edges"):
            src, dst = self.layers[e.get("from-layer")], self.layers[e.get("to-layer")]
            dst.inputs[dst.input_ports.index(e.get("to-port"))] = (src.id, e.get("from-port"))
            src.consumers.append(dst.id)
        self._by_name = {layer.name: layer for layer in self.layers.values()}
        self._folded: dict[str, np.ndarray] = {}

    # ---- navigation -------------------------------------------------------------------------
    def layer(self, name: str) -> IRLayer:
        """The layer called ``name``; KeyError if absent."""
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"{self.source}: no layer named {name!r}") from None

    def producer(self, layer: IRLayer, port_index: int) -> IRLayer:
        """The layer feeding input ``port_index`` (0-based, in declaration order) of ``layer``."""
        return self.layers[layer.inputs[port_index][0]]

    def of_type(self, *types: str) -> list[IRLayer]:
        """Layers of the given types, in file order."""
        return [layer for layer in self.layers.values() if layer.type in types]

    # ---- constant folding ---------------------------------------------------------------------
    def is_constant(self, layer: IRLayer) -> bool:
        """Whether ``layer`` depends on constants only."""
        if layer.type == "Const":
            return True
        if layer.type == "Parameter":
            return False
        return all(self.is_constant(self.layers[src]) for src, _ in layer.inputs)

    def constant(self, layer: IRLayer) -> np.ndarray:
        """Fold the constant sub-graph ending at ``layer`` to a numpy array (float32 for float results)."""
        if layer.id not in self._folded:
            self._folded[layer.id] = self._fold(layer)
        return self._folded[layer.id]

    def _fold(self, layer: IRLayer) -> np.ndarray:
        t, a = layer.type, layer.attrs
        if t == "Const":
            dtype = _ELEMENT_TYPES.get(a.get("element_type"))
            if dtype is None:
                raise IRFormatError(f"{self.source}: Const {layer.name!r} has unsupported element_type "
                                    f"{a.get('element_type')!r}")
            off, size = int(a["offset"]), int(a["size"])
            if off + size > len(self._bin):
                raise IRFormatError(f"{self.source}: Const {layer.name!r} reads bytes {off}..{off + size} but the "
                                    f".bin has {len(self._bin)}; the .xml and .bin do not belong together")
            shape = tuple(int(s) for s in a["shape"].split(",")) if a.get("shape") else ()
            arr = np.frombuffer(self._bin, dtype=dtype, count=size // np.dtype(dtype).itemsize, offset=off)
            return arr.reshape(shape).copy()
        args = [self.constant(self.layers[src]) for src, _ in layer.inputs]
        if t == "Convert":
            dtype = _ELEMENT_TYPES[a["destination_type"]]
            return args[0].astype(np.float32 if np.issubdtype(dtype, np.floating) else dtype)
        if t == "FakeQuantize":
            return fake_quantize(args[0], FakeQuantizeParams(*args[1:], levels=int(a["levels"])))
        if t == "Reshape":
            target = [int(v) for v in args[1]]
            if a.get("special_zero", "false").lower() == "true":
                target = [args[0].shape[i] if v == 0 else v for i, v in enumerate(target)]
            return args[0].reshape(target)
        if t in ("Multiply", "Add", "Subtract"):
            op = {"Multiply": np.multiply, "Add": np.add, "Subtract": np.subtract}[t]
            return op(args[0].astype(np.float32), args[1].astype(np.float32))
        raise IRFormatError(f"{self.source}: cannot fold constant layer {layer.name!r} of type {t}")

    def fake_quantize_params(self, layer: IRLayer) -> FakeQuantizeParams:
        """Ranges of a FakeQuantize ``layer`` whose range inputs are constant (float32 arrays)."""
        if layer.type != "FakeQuantize":
            raise IRFormatError(f"{self.source}: {layer.name!r} is a {layer.type}, not a FakeQuantize")
        ranges = [self.constant(self.producer(layer, i)).astype(np.float32) for i in range(1, 5)]
        return FakeQuantizeParams(*ranges, levels=int(layer.attrs["levels"]))


def read_ir(xml_bytes: bytes, bin_bytes: bytes, source: str = "<ir>") -> IRGraph:
    """Parse an OpenVINO IR v10 model from the bytes of its ``.xml`` and ``.bin`` files."""
    return IRGraph(xml_bytes, bin_bytes, source)
