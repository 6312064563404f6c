"""Network input from images and network maps back to image pixels: numpy/cv2 only, no torch.

Safe to run in CPU decode workers; every backend (:mod:`pipeline.models.inference`) shares it.

Geometry (pixel centres at integers, see :mod:`pipeline.fields`): an image of W x H pixels is resized
by ``f`` to w x h input pixels (top-left aligned, ``x_in = (x + 0.5) * w / W - 0.5``), optionally
mirrored, and padded right/bottom with the entry's ``pad_value``: the height to a multiple of the
stride, the width to a multiple of the bucket (shape bucketing: a few canvas widths per height, so
batches of mixed sizes fill and compiled shapes are reused). Output cell j covers input pixels
[stride*j, stride*(j+1)), so its centre is input pixel ``stride*j + (stride-1)/2`` (the OpenPose
training-label convention). Maps are cropped to the cells that overlap the image and returned as
:class:`pipeline.fields.PoseFields` whose ``scale``/``offset`` take cells to original pixels.

Multi-scale / flip averaging resamples every pass's maps (bilinear, per axis) onto the grid of the
reference pass (scale 1.0 if requested, else the first scale; never flipped) and takes the mean.
Flipped passes are mirrored back: left/right parts swap, each limb's PAF moves to its mirror limb
and its x component changes sign.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from pipeline.fields import PoseFields
from pipeline.models.registry import Preprocessing
from pipeline.skeleton import KEYPOINTS, LIMBS, NUM_HEATMAPS, PAF_CHANNELS


# ---- mirror symmetry of the COCO-18 layout -------------------------------------------------------------

def _mirror_part(i: int) -> int:
    name = KEYPOINTS[i]
    swapped = {"l_": "r_", "r_": "l_"}.get(name[:2], "") + name[2:] if name[:2] in ("l_", "r_") else name
    return KEYPOINTS.index(swapped)


#: heatmap channel c of a mirrored image holds part HEATMAP_MIRROR[c] of the original (background fixed).
HEATMAP_MIRROR: tuple[int, ...] = tuple(_mirror_part(i) for i in range(len(KEYPOINTS))) + (NUM_HEATMAPS - 1,)


def _paf_mirror() -> tuple[np.ndarray, np.ndarray]:
    """(src channel, sign) per destination PAF channel for mirroring a PAF stack back."""
    src = np.zeros(2 * len(LIMBS), np.int64)
    sign = np.ones(2 * len(LIMBS), np.float32)
    for k, (a, b) in enumerate(LIMBS):
        ma, mb = HEATMAP_MIRROR[a], HEATMAP_MIRROR[b]
        if (ma, mb) not in LIMBS:
            raise AssertionError(f"limb {LIMBS[k]} has no mirror limb {(ma, mb)} in skeleton.LIMBS")
        mk = LIMBS.index((ma, mb))
        (dx, dy), (sx, sy) = PAF_CHANNELS[mk], PAF_CHANNELS[k]
        src[dx], sign[dx] = sx, -1.0
        src[dy] = sy
    return src, sign


PAF_MIRROR_SOURCE, PAF_MIRROR_SIGN = _paf_mirror()


# ---- preprocessing ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Placement:
    """Where one image sits in a network input.

    image_size:   (W, H) original pixels.  resized_size: (w, h) input pixels holding the image (top-left).
    input_size:   (Wp, Hp) padded network input in pixels.  flipped: mirrored left-right before padding.
    stride:       input pixels per map cell.  scale: the multi-scale factor this pass used.
    """

    image_size: tuple[int, int]
    resized_size: tuple[int, int]
    input_size: tuple[int, int]
    flipped: bool
    stride: int
    scale: float = 1.0

    @property
    def valid_cells(self) -> tuple[int, int]:
        """(columns, rows) of map cells overlapping the image."""
        return math.ceil(self.resized_size[0] / self.stride), math.ceil(self.resized_size[1] / self.stride)

    def cell_geometry(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """((sx, sy), (ox, oy)): cell (i, j) centre -> original pixel (j*sx + ox, i*sy + oy).

        sx is negative for a flipped placement (cell columns then run right to left)."""
        (W, H), (w, h), s = self.image_size, self.resized_size, self.stride
        fx, fy = W / w, H / h
        c = (s - 1) / 2.0
        sy, oy = s * fy, (c + 0.5) * fy - 0.5
        if self.flipped:  # x_in = w - 1 - (s*j + c)
            return (-s * fx, sy), ((w - 1 - c + 0.5) * fx - 0.5, oy)
        return (s * fx, sy), ((c + 0.5) * fx - 0.5, oy)


@dataclass(frozen=True)
class Prepared:
    """One network input: the uint8 BGR canvas [Hp, Wp, 3] (the image resized, maybe mirrored, padded
    with ``prep.pad_value``; not yet normalised: 1 byte per value, what the decode stage hands to the
    network) and its :class:`Placement`. :attr:`input` is the float32 [3, Hp, Wp] network input."""

    pixels: np.ndarray
    placement: Placement
    prep: Preprocessing = dataclasses.field(repr=False, compare=False, default=None)

    @property
    def input(self) -> np.ndarray:
        """float32 [3, Hp, Wp]: :func:`normalize` of the canvas."""
        return normalize(self.pixels[None], self.prep)[0]


def normalize(pixels: np.ndarray, prep: Preprocessing) -> np.ndarray:
    """uint8 BGR canvases [N, Hp, Wp, 3] -> the network's float32 input [N, 3, Hp, Wp]: channels in
    ``prep.color`` order, then (pixel - mean) * scale (numpy; the torch twin on the device is
    :func:`pipeline.models.device_candidates.network_input`, the OpenVINO backend folds it into the model)."""
    x = pixels.astype(np.float32)
    if prep.color == "RGB":
        x = x[..., ::-1]
    x = (x - np.asarray(prep.mean, np.float32)) * np.float32(prep.scale)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def _check_image(img: np.ndarray, index: int) -> None:
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        desc = f"{type(img).__name__} {getattr(img, 'dtype', '')} {getattr(img, 'shape', '')}"
        raise ValueError(f"image {index} must be a HxWx3 uint8 BGR numpy array (as cv2.imread gives), got {desc}")
    if img.shape[0] < 1 or img.shape[1] < 1:
        raise ValueError(f"image {index} is empty (shape {img.shape})")


def _pad_pixel(prep: Preprocessing) -> int:
    """``prep.pad_value`` as a uint8 pixel value (ValueError when it is not one)."""
    if prep.pad_value != int(prep.pad_value) or not 0 <= prep.pad_value <= 255:
        raise ValueError(f"pad_value must be a whole 0-255 pixel value, got {prep.pad_value!r}")
    return int(prep.pad_value)


def bucketed_width(width: int, stride: int, bucket: int | None) -> int:
    """Padded input width in pixels for an image resized to ``width`` pixels: rounded up to a
    multiple of ``bucket`` (None: of ``stride``, no bucketing). ``bucket`` must be a multiple of
    ``stride`` so the map grid stays aligned with the image."""
    multiple = stride if bucket is None else bucket
    if multiple < stride or multiple % stride:
        raise ValueError(f"bucket must be a positive multiple of the stride {stride} pixels, got {bucket!r}")
    return math.ceil(width / multiple) * multiple


def preprocess(images: Sequence[np.ndarray], prep: Preprocessing, *, scale: float = 1.0,
               target_height: int | None = None, flip: bool = False, bucket: int | None = None) -> list[Prepared]:
    """Resize, (flip) and pad HxWx3 uint8 BGR images for a network with preprocessing ``prep``.

    Flexible-size networks: height -> ``scale * (target_height or prep.target_height)`` pixels, aspect
    kept, padded to a multiple of ``prep.stride``; the width is padded to a multiple of ``bucket``
    pixels (None: of the stride), so images of different aspect share a few input shapes. Padding is
    right/bottom only, so the cell -> pixel transform is unchanged and the padded cells are cropped
    off the maps. Fixed-size networks (``prep.input_size``): letterboxed top-left into the input;
    only ``scale == 1`` is allowed. Returns one :class:`Prepared` (uint8 canvas [Hp, Wp, 3]) per image.
    """
    out = []
    for idx, img in enumerate(images):
        _check_image(img, idx)
        H, W = img.shape[:2]
        if prep.input_size is not None:
            if scale != 1.0:
                raise ValueError(f"this network has a fixed input size {prep.input_size}; multi-scale "
                                 f"(scale {scale}) is not possible, use scales=(1.0,)")
            f = min(prep.input_size[0] / W, prep.input_size[1] / H)
            w, h = min(prep.input_size[0], max(1, round(W * f))), min(prep.input_size[1], max(1, round(H * f)))
            Wp, Hp = prep.input_size
        else:
            f = scale * (target_height or prep.target_height) / H
            w, h = max(1, round(W * f)), max(1, round(H * f))
            Wp, Hp = bucketed_width(w, prep.stride, bucket), math.ceil(h / prep.stride) * prep.stride
        resized = img if (w, h) == (W, H) else cv2.resize(
            img, (w, h), interpolation=cv2.INTER_AREA if w < W else cv2.INTER_LINEAR)
        if flip:
            resized = resized[:, ::-1]
        canvas = np.full((Hp, Wp, 3), _pad_pixel(prep), np.uint8)
        canvas[:h, :w] = resized
        out.append(Prepared(canvas, Placement((W, H), (w, h), (Wp, Hp), flip, prep.stride, scale), prep))
    return out


def prepare_passes(images: Sequence[np.ndarray], prep: Preprocessing, scales: Sequence[float] = (1.0,),
                   flip: bool = False, target_height: int | None = None,
                   bucket: int | None = None) -> list[list[Prepared]]:
    """All passes for multi-scale/flip inference: ``[pass][image]``; passes are every scale unflipped,
    then (if ``flip``) every scale flipped. ``bucket``: see :func:`preprocess`."""
    passes = [(s, False) for s in scales] + ([(s, True) for s in scales] if flip else [])
    return [preprocess(images, prep, scale=s, target_height=target_height, flip=fl, bucket=bucket)
            for s, fl in passes]


# ---- resampling maps between cell grids ---------------------------------------------------------------

def _interp_matrix(n_dst: int, n_src: int, dst_scale: float, dst_offset: float,
                   src_scale: float, src_offset: float) -> np.ndarray:
    """[n_dst, n_src] linear-interpolation weights: dst cell k samples src at (k*ds + do - so) / ss."""
    u = (np.arange(n_dst) * dst_scale + dst_offset - src_offset) / src_scale
    u = np.clip(u, 0, n_src - 1)
    lo = np.floor(u).astype(np.int64)
    hi = np.minimum(lo + 1, n_src - 1)
    t = (u - lo).astype(np.float32)
    m = np.zeros((n_dst, n_src), np.float32)
    m[np.arange(n_dst), lo] += 1 - t
    m[np.arange(n_dst), hi] += t
    return m


def resample(maps: np.ndarray, src: tuple[tuple[float, float], tuple[float, float]],
             dst: tuple[tuple[float, float], tuple[float, float]], dst_shape: tuple[int, int]) -> np.ndarray:
    """Resample [C, Hs, Ws] maps with cell geometry ``src`` ((sx, sy), (ox, oy)) onto a grid of
    ``dst_shape`` (rows, cols) cells with geometry ``dst``; bilinear, edge values extend outward."""
    (ssx, ssy), (sox, soy) = src
    (dsx, dsy), (dox, doy) = dst
    ry = _interp_matrix(dst_shape[0], maps.shape[1], dsy, doy, ssy, soy)
    rx = _interp_matrix(dst_shape[1], maps.shape[2], dsx, dox, ssx, sox)
    return np.einsum("ij,cjk,lk->cil", ry, maps, rx, optimize=True).astype(np.float32)


def unflip(heatmaps: np.ndarray, pafs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Channel part of mirroring maps of a flipped image back (the spatial part is in the geometry):
    swap left/right parts and limbs, negate PAF x components. Shapes [19, H, W], [38, H, W]."""
    return heatmaps[list(HEATMAP_MIRROR)], pafs[PAF_MIRROR_SOURCE] * PAF_MIRROR_SIGN[:, None, None]


# ---- combining passes -------------------------------------------------------------------------------------

def crop_to_image(heatmaps: np.ndarray, pafs: np.ndarray, placement: Placement) -> tuple[np.ndarray, np.ndarray]:
    """One image's maps [19, Hp/8, Wp/8], [38, ...] cropped to the cells overlapping the image
    (drops the padding and bucket cells)."""
    cw, ch = placement.valid_cells
    return heatmaps[:, :ch, :cw], pafs[:, :ch, :cw]


def average_passes(passes: Sequence[Sequence[Prepared]],
                   maps: Sequence[Sequence[tuple[np.ndarray, np.ndarray]]]) -> list[PoseFields]:
    """One :class:`PoseFields` per image from every pass's cropped maps ``maps[pass][image]`` =
    (heatmaps [19, h, w], pafs [38, h, w]): flipped passes mirrored back, every pass resampled onto
    the reference grid (unflipped at scale 1 if present, else the first unflipped pass, else pass 0)
    and averaged."""
    fields = []
    for i in range(len(passes[0]) if passes else 0):
        placements = [p[i].placement for p in passes]
        ref_pass = min(range(len(passes)), key=lambda k: (placements[k].flipped, placements[k].scale != 1.0, k))
        ref = dataclasses.replace(placements[ref_pass], flipped=False)
        ref_geom = ref.cell_geometry()
        shape = ref.valid_cells[::-1]
        heat_sum = np.zeros((NUM_HEATMAPS,) + shape, np.float32)
        paf_sum = np.zeros((len(PAF_MIRROR_SOURCE),) + shape, np.float32)
        for k, pl in enumerate(placements):
            heat, paf = maps[k][i]
            if pl.flipped:
                heat, paf = unflip(heat, paf)
            geom = pl.cell_geometry()
            if geom != ref_geom or heat.shape[1:] != shape:
                heat, paf = resample(heat, geom, ref_geom, shape), resample(paf, geom, ref_geom, shape)
            heat_sum += heat
            paf_sum += paf
        n = float(len(passes))
        fields.append(PoseFields(heatmaps=np.ascontiguousarray(heat_sum / n),
                                 pafs=np.ascontiguousarray(paf_sum / n),
                                 scale=ref_geom[0], offset=ref_geom[1], image_size=ref.image_size))
    return fields
