"""The weights registry: what each pretrained PAF network is, where its files live, how to feed it.

Importing this module is cheap and torch-free: entries name their builder by dotted path
(``"pipeline.models.lightweight_openpose:build_omz"``), which is imported only when a network is
built (:func:`pipeline.models.load_model`). The shipped entries are listed in
:mod:`pipeline.models.catalog`, loaded on the first :func:`get` / :func:`list_models`; more can be
added with :func:`register`.
"""
from __future__ import annotations

import hashlib
import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Literal, Mapping, Sequence

if TYPE_CHECKING:  # numpy types only for annotations: importing the registry imports nothing heavy
    import numpy as np

    from pipeline.models.preprocessing import Prepared

#: Network precisions, devices and inference runtimes a runner (and a job spec) accepts.
PRECISIONS = ("fp32", "fp16", "bf16")
DEVICES = ("auto", "cpu", "cuda")
BACKENDS = ("auto", "torch", "openvino")


@dataclass(frozen=True)
class Preprocessing:
    """How raw BGR uint8 pixels become the network input.

    color:        channel order the network expects ("BGR" or "RGB").
    mean, scale:  input = (pixel - mean) * scale, per channel in ``color`` order (0-255 pixels).
    input_size:   fixed (width, height) in pixels the network must see, or None if any size works.
    target_height: for flexible-size networks, the height in pixels images are resized to (scale 1.0).
    pad_value:    raw 0-255 pixel value used to pad to a multiple of ``stride`` (before mean/scale).
    stride:       input pixels per output map cell (8 for every network here).
    bucket:       flexible-size networks: :meth:`prepare` pads the input width up to a multiple of
                  this many pixels, so images of different sizes share a few input shapes (batches
                  fill, compiled shapes are reused); the padded cells are cropped off the maps.
    """

    color: Literal["BGR", "RGB"] = "BGR"
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    scale: float = 1.0
    input_size: tuple[int, int] | None = None
    target_height: int = 368
    pad_value: float = 0.0
    stride: int = 8
    bucket: int = 64

    def prepare(self, images: Sequence[np.ndarray], scales: Sequence[float] = (1.0,), flip: bool = False,
                target_height: int | None = None) -> list[list[Prepared]]:
        """Network input passes ``[pass][image]`` for HxWx3 uint8 BGR ``images``, shape-bucketed
        (see :func:`pipeline.models.preprocessing.prepare_passes`); numpy/cv2 only, no torch."""
        from pipeline.models.preprocessing import prepare_passes

        return prepare_passes(images, self, scales, flip, target_height, bucket=self.bucket)


@dataclass(frozen=True)
class WeightsFile:
    """One file of a weights entry: its name inside the entry's folder and its sha256 hex digest."""

    name: str
    sha256: str


@dataclass(frozen=True)
class WeightsEntry:
    """A registered pretrained network.

    name:          registry key, e.g. "omz-lightweight".
    architecture:  the nn.Module family, e.g. "lightweight_openpose".
    folder:        sub-folder of the model directory holding ``files``.
    files:         the weight files, checked against sha256 before use.
    builder:       dotted path ``"package.module:function"`` of a callable(files: Mapping[str, bytes])
                   -> torch.nn.Module, given each file's bytes by name; the returned module maps a
                   float32 [N, 3, H, W] preprocessed batch to (heatmaps [N, 19, H/8, W/8],
                   pafs [N, 38, H/8, W/8]) in the COCO-18 layout. Imported only by :meth:`build`.
    preprocessing: see :class:`Preprocessing`.
    license, source_url: where the weights come from and under which terms.
    published_ap:  COCO keypoint AP published upstream (None if none), with ``ap_note`` saying
                   which split / protocol the number refers to.
    batch_independent: False when outputs depend on other images in the batch (run batch size 1).
    openvino_ir:   (xml file, bin file) when ``files`` hold an OpenVINO IR the OpenVINO backend
                   reads directly; None: that backend converts the torch module.
    metadata:      anything else worth recording (params, GFLOPs at native size, ...).
    """

    name: str
    architecture: str
    folder: str
    files: tuple[WeightsFile, ...]
    builder: str
    preprocessing: Preprocessing
    license: str
    source_url: str
    published_ap: float | None = None
    ap_note: str = ""
    batch_independent: bool = True
    openvino_ir: tuple[str, str] | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def builder_function(self) -> Callable[[Mapping[str, bytes]], Any]:
        """The callable :attr:`builder` names (imports its module, which may import torch)."""
        module_name, _, function = self.builder.partition(":")
        try:
            return getattr(importlib.import_module(module_name), function)
        except (ImportError, AttributeError) as exc:
            raise ImportError(f"builder {self.builder!r} of model {self.name!r} cannot be imported "
                              f"({exc}); it must be 'package.module:function'") from exc

    def build(self, files: Mapping[str, bytes]):
        """The torch.nn.Module built from ``files`` ({file name: bytes}, already sha256-checked)."""
        return self.builder_function()(files)

    @property
    def weights_digest(self) -> str:
        """sha256 hex digest over every weights file's name and sha256 (changes when any file does)."""
        text = "\n".join(f"{f.name} {f.sha256}" for f in sorted(self.files, key=lambda f: f.name))
        return hashlib.sha256(text.encode()).hexdigest()


_REGISTRY: dict[str, WeightsEntry] = {}


def register(entry: WeightsEntry) -> WeightsEntry:
    """Add ``entry`` to the registry (names are unique) and return it."""
    if entry.name in _REGISTRY:
        raise ValueError(f"model {entry.name!r} is already registered")
    if ":" not in entry.builder:
        raise ValueError(f"model {entry.name!r}: builder must be a dotted path 'package.module:function', "
                         f"got {entry.builder!r}")
    _REGISTRY[entry.name] = entry
    return entry


def _load_catalog() -> None:
    import pipeline.models.catalog  # noqa: F401  (registers the shipped entries on first import)


def get(name: str) -> WeightsEntry:
    """The registered entry called ``name``; a KeyError lists the known names."""
    _load_catalog()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(sorted(_REGISTRY))}") from None


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    _load_catalog()
    return sorted(_REGISTRY)


def model_id(name: str) -> str:
    """A stable identifier of the weights: ``"<name>@<first 8 hex digits of the sha256 over every
    weights file's name and sha256>"`` (:attr:`WeightsEntry.weights_digest`)."""
    entry = get(name)
    return f"{entry.name}@{entry.weights_digest[:8]}"
