"""LimbCandidates: the compact hand-off between peak finding + limb scoring and assembly.

``find_candidates`` turns one image's PoseFields into part peaks and the PAF line-integral
score of every candidate limb that passes the paper's criteria, all limbs and all candidate
pairs at once with numpy fancy indexing.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.fields import PoseFields
from pipeline.parsing.config import ParseConfig
from pipeline.parsing.peaks import find_peaks
from pipeline.skeleton import LIMBS, NUM_LIMBS, PAF_CHANNELS

_LIMB_A = np.array([a for a, _ in LIMBS])
_LIMB_B = np.array([b for _, b in LIMBS])
_PAF_XY = np.array(PAF_CHANNELS)  # [19, 2]
_MAX_PAIRS_PER_CHUNK = 1 << 16  # bounds temporary memory to a few tens of MB


@dataclass(frozen=True)
class LimbCandidates:
    """Part peaks and scored candidate limbs of one image (small and picklable).

    peak_xy:     float32 [K, 2] peak (x, y) in original-image pixels.
    peak_cell:   float32 [K, 2] the same peaks in map cells (cell centres at integers).
    peak_score:  float32 [K] confidence-map value at each peak.
    part_start:  int32 [19]: the peaks of part p are rows part_start[p]:part_start[p+1].
    conn_a, conn_b: int32 [C] peak rows of the two parts (LIMBS[k] order) of each candidate limb
                 that passed the PAF criteria.
    conn_score:  float32 [C] its score: mean PAF projection + length prior (always > 0).
    limb_start:  int32 [20]: the candidates of limb k are conn rows limb_start[k]:limb_start[k+1].
    image_size:  (width, height) of the original image in pixels.
    """

    peak_xy: np.ndarray
    peak_cell: np.ndarray
    peak_score: np.ndarray
    part_start: np.ndarray
    conn_a: np.ndarray
    conn_b: np.ndarray
    conn_score: np.ndarray
    limb_start: np.ndarray
    image_size: tuple[int, int]

    def nbytes(self) -> int:
        """Bytes held by the arrays (what travels between a scoring and an assembly worker)."""
        return sum(a.nbytes for a in (self.peak_xy, self.peak_cell, self.peak_score, self.part_start,
                                      self.conn_a, self.conn_b, self.conn_score, self.limb_start))

    def limb(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(conn_a, conn_b, conn_score) of limb k's candidates."""
        sl = slice(self.limb_start[k], self.limb_start[k + 1])
        return self.conn_a[sl], self.conn_b[sl], self.conn_score[sl]


def check_fields(fields: PoseFields) -> None:
    """Raise ValueError unless ``fields`` is a PoseFields with finite maps."""
    if not isinstance(fields, PoseFields):
        raise ValueError(f"parse needs a pipeline.fields.PoseFields, got {type(fields).__name__}")
    for name in ("heatmaps", "pafs"):
        arr = getattr(fields, name)
        if not np.issubdtype(arr.dtype, np.floating):
            raise ValueError(f"PoseFields.{name} must be a float array, got dtype {arr.dtype}")
        bad = arr.size - int(np.count_nonzero(np.isfinite(arr)))
        if bad:
            raise ValueError(f"PoseFields.{name} holds {bad} NaN/inf values (of {arr.size}); the "
                             "network output is invalid: check the model weights, input "
                             "preprocessing and precision (fp16 overflow) before parsing")
    height = fields.image_size[1]
    if height <= 0 or not all(np.isfinite(fields.scale)) or not all(np.isfinite(fields.offset)):
        raise ValueError(f"PoseFields needs a positive image height and finite scale/offset, got "
                         f"image_size={fields.image_size} scale={fields.scale} offset={fields.offset}")


def _footing(shape: tuple[int, int], limb: np.ndarray, z: np.ndarray):
    """Where map-cell points z = x + iy [n, S] of limb [n, 1] fall (clamped to the map): flat
    index into [19 * H * W] of the top-left of their 4 bilinear cells, and fractions fx, fy."""
    h, w = shape
    x = np.clip(z.real, 0.0, w - 1)
    y = np.clip(z.imag, 0.0, h - 1)
    x0 = np.minimum(np.floor(x), max(w - 2, 0))  # float32, so all the arithmetic stays float32
    y0 = np.minimum(np.floor(y), max(h - 2, 0))
    return (limb * h + y0.astype(np.int32)) * w + x0.astype(np.int32), x - x0, y - y0


def _bilinear(field: np.ndarray, shape: tuple[int, int], limb: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Sample the flat complex64 field [19 * H * W] (x + iy PAF of each limb) of limb [n, 1] at
    map-cell points z = x + iy [n, S] (clamped to the map) -> float32 [n, S, 2] (x, y)."""
    h, w = shape
    i00, fx, fy = _footing(shape, limb, z)
    fx, fy = fx[..., None], fy[..., None]
    dx, dy = int(w > 1), w * int(h > 1)

    def at(index: np.ndarray) -> np.ndarray:
        # One 8-byte gather per point, then seen as (x, y) float32 pairs.
        return field.take(index).view(np.float32).reshape(index.shape + (2,))

    top, top_right = at(i00), at(i00 + dx)
    top += (top_right - top) * fx
    bottom, bottom_right = at(i00 + dy), at(i00 + dy + dx)
    bottom += (bottom_right - bottom) * fx
    top += (bottom - top) * fy
    return top


def _strong_corners(field: np.ndarray, shape: tuple[int, int], threshold: float) -> np.ndarray:
    """bool [19 * H * W]: does any of the 4 bilinear cells with this top-left cell have a PAF
    longer than threshold? Where none does, no sample can project above it."""
    strong = (np.abs(field) > threshold).reshape((-1,) + tuple(shape))
    strong[:, :, :-1] |= strong[:, :, 1:]
    strong[:, :-1, :] |= strong[:, 1:, :]
    return strong.ravel()


def _score_pairs(field: np.ndarray, strong: np.ndarray | None, shape: tuple[int, int], limb, ia, ib,
                 cells, pixels, height: float, config: ParseConfig) -> tuple[np.ndarray, np.ndarray]:
    """PAF line integral of candidate limbs from peak ia to peak ib -> (score [m], kept [m]):
    the indices (into ia/ib) of the candidates that pass and their scores. ``cells`` and
    ``pixels`` are the peaks as complex x + iy; ``strong`` from ``_strong_corners`` (or None).

    A candidate may miss at most ``allowed`` of its samples, so it is first checked on
    allowed + 1 interior samples: when all of them miss it is out (exact, and most pairs of
    parts of different people go here); the survivors get all samples. Cheaper still, and also
    exact, a sample whose 4 cells all hold short PAF vectors misses: that is checked first.
    """
    d_px = pixels[ib] - pixels[ia]
    length = np.abs(d_px)
    alive = np.flatnonzero(length > 1e-6)
    n = config.paf_samples
    t = np.linspace(0.0, 1.0, n, dtype=np.float32)[None, :]
    allowed = n - (int(np.floor(config.min_support * n)) + 1)

    def points(rows: np.ndarray, at: np.ndarray) -> np.ndarray:
        start = cells[ia[rows]]
        return start[:, None] + at * (cells[ib[rows]] - start)[:, None]

    def project(rows: np.ndarray, at: np.ndarray) -> np.ndarray:
        vec = _bilinear(field, shape, limb[rows][:, None], points(rows, at))
        unit = (d_px[rows] / length[rows]).astype(np.complex64)
        return vec[..., 0] * unit.real[:, None] + vec[..., 1] * unit.imag[:, None]

    if allowed + 1 < n:
        probe = t[:, np.unique(np.round(np.linspace(0, n - 1, allowed + 3)[1:-1]).astype(int))]
        if strong is not None:
            footing = _footing(shape, limb[alive][:, None], points(alive, probe))[0]
            alive = alive[strong.take(footing).any(axis=1)]
        alive = alive[(project(alive, probe) > config.paf_threshold).any(axis=1)]
    proj = project(alive, t)
    score = proj.mean(axis=1, dtype=np.float64)
    if config.distance_prior > 0:
        score = score + np.minimum(config.distance_prior * height / length[alive] - 1.0, 0.0)
    support = np.count_nonzero(proj > config.paf_threshold, axis=1)
    passed = (support > config.min_support * n) & (score > 0)
    return score[passed], alive[passed]


def _all_pairs(part_start: np.ndarray, limbs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (peak of part a, peak of part b) pair of each limb -> (limb, ia, ib), limb-major,
    then ia, then ib."""
    na = part_start[_LIMB_A[limbs] + 1] - part_start[_LIMB_A[limbs]]
    nb = part_start[_LIMB_B[limbs] + 1] - part_start[_LIMB_B[limbs]]
    sizes = na * nb
    total = int(sizes.sum())
    limb = np.repeat(limbs, sizes)
    first = np.repeat(np.cumsum(sizes) - sizes, sizes)
    local = np.arange(total) - first  # index within the limb's na x nb block
    nb_rep = np.repeat(nb, sizes)
    ia = part_start[_LIMB_A[limb]] + local // np.maximum(nb_rep, 1)
    ib = part_start[_LIMB_B[limb]] + local % np.maximum(nb_rep, 1)
    return limb, ia, ib


def find_candidates(fields: PoseFields, config: ParseConfig = ParseConfig()) -> LimbCandidates:
    """Part peaks and scored candidate limbs of one image.

    fields: PoseFields (heatmaps [19, H, W], pafs [38, H, W], map cells -> pixels via scale/offset).
    A candidate limb k between peaks A and B (parts LIMBS[k]) is kept when more than
    ``min_support`` of its ``paf_samples`` evenly spaced samples (A and B included, PAF sampled
    bilinearly in map cells) project onto the A->B pixel direction above ``paf_threshold`` and
    its score, mean projection + min(distance_prior * image_height / |AB| - 1, 0) with lengths in
    pixels, is positive. Raises ValueError on NaN/inf maps.
    """
    check_fields(fields)
    part_start, cells, scores = find_peaks(fields.heatmaps, config)
    pixels = fields.cells_to_pixels(cells)
    limbs = np.arange(NUM_LIMBS if config.redundant_limbs else NUM_LIMBS - 2)
    limb, ia, ib = (a.astype(np.int32) for a in _all_pairs(part_start, limbs))
    # Each limb's (x, y) PAF as one complex number per cell, flat [19 * H * W]: one gather
    # fetches both components.
    xy = fields.pafs[_PAF_XY].astype(np.float32)  # [19, 2, H, W]
    field = np.empty(xy.shape[:1] + xy.shape[2:], np.complex64)
    field.real, field.imag = xy[:, 0], xy[:, 1]
    field = field.ravel()
    shape = fields.pafs.shape[1:]
    strong = _strong_corners(field, shape, config.paf_threshold) if config.paf_threshold >= 0 else None
    height = float(fields.image_size[1])
    zcells = (cells[:, 0] + 1j * cells[:, 1]).astype(np.complex64)
    zpixels = pixels[:, 0] + 1j * pixels[:, 1]
    keep_parts, score_parts = [], []
    for lo in range(0, len(limb), _MAX_PAIRS_PER_CHUNK):
        sl = slice(lo, lo + _MAX_PAIRS_PER_CHUNK)
        score, kept = _score_pairs(field, strong, shape, limb[sl], ia[sl], ib[sl], zcells, zpixels,
                                   height, config)
        keep_parts.append(lo + kept)
        score_parts.append(score)
    keep = np.concatenate(keep_parts) if keep_parts else np.zeros(0, np.int64)
    conn_score = np.concatenate(score_parts) if score_parts else np.zeros(0)
    limb_start = np.searchsorted(limb[keep], np.arange(NUM_LIMBS + 1)).astype(np.int32)
    return LimbCandidates(
        peak_xy=pixels.astype(np.float32), peak_cell=cells.astype(np.float32),
        peak_score=scores, part_start=part_start,
        conn_a=ia[keep].astype(np.int32), conn_b=ib[keep].astype(np.int32),
        conn_score=conn_score.astype(np.float32), limb_start=limb_start,
        image_size=(int(fields.image_size[0]), int(fields.image_size[1])))
