"""The weights registry: what each pretrained PAF network is, where its files live, how to feed it.

Each architecture module registers its entries with :func:`register`; users call :func:`get`,
:func:`list_models` and :func:`pipeline.models.load_model`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Mapping

from pipeline.skeleton import NUM_HEATMAPS, NUM_PAFS  # noqa: F401  (documented output layout)


@dataclass(frozen=True)
class Preprocessing:
    """How raw BGR uint8 pixels become the network input.

    color:        channel order the network expects ("BGR" or "RGB").
    mean, scale:  input = (pixel - mean) * scale, per channel in ``color`` order (0-255 pixels).
    input_size:   fixed (width, height) in pixels the network must see, or None if any size works.
    target_height: for flexible-size networks, the height in pixels images are resized to (scale 1.0).
    pad_value:    raw 0-255 pixel value used to pad to a multiple of ``stride`` (before mean/scale).
    stride:       input pixels per output map cell (8 for every network here).
    """

    color: Literal["BGR", "RGB"] = "BGR"
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    scale: float = 1.0
    input_size: tuple[int, int] | None = None
    target_height: int = 368
    pad_value: float = 0.0
    stride: int = 8


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
    builder:       callable(paths: Mapping[str, bytes]) -> torch.nn.Module, given each file's bytes
                   by name; the returned module maps a float32 [N, 3, H, W] preprocessed batch to
                   (heatmaps [N, 19, H/8, W/8], pafs [N, 38, H/8, W/8]) in the COCO-18 layout.
    preprocessing: see :class:`Preprocessing`.
    license, source_url: where the weights come from and under which terms.
    published_ap:  COCO keypoint AP published upstream (None if none), with ``ap_note`` saying
                   which split / protocol the number refers to.
    batch_independent: False when outputs depend on other images in the batch (run batch size 1).
    metadata:      anything else worth recording (params, GFLOPs at native size, ...).
    """

    name: str
    architecture: str
    folder: str
    files: tuple[WeightsFile, ...]
    builder: Callable[[Mapping[str, bytes]], Any]
    preprocessing: Preprocessing
    license: str
    source_url: str
    published_ap: float | None = None
    ap_note: str = ""
    batch_independent: bool = True
    metadata: Mapping[str, Any] = field(default_factory=dict)


_REGISTRY: dict[str, WeightsEntry] = {}


def register(entry: WeightsEntry) -> WeightsEntry:
    """Add ``entry`` to the registry (names are unique) and return it."""
    if entry.name in _REGISTRY:
        raise ValueError(f"model {entry.name!r} is already registered")
    _REGISTRY[entry.name] = entry
    return entry


def get(name: str) -> WeightsEntry:
    """The registered entry called ``name``; a KeyError lists the known names."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(sorted(_REGISTRY))}") from None


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    return sorted(_REGISTRY)
