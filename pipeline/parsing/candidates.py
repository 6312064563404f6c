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
from pipeline.skeleton import LIMBS, NUM_KEYPOINTS, NUM_LIMBS, PAF_CHANNELS

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

    def num_peaks(self, part: int) -> int:
        return int(self.part_start[part + 1] - self.part_start[part])

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


def _bilinear(field: np.ndarray, limb: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Sample field [19, H, W, 2] of limb [n, 1] at cell coordinates x, y [n, S] -> [n, S, 2]."""
    _, h, w, _ = field.shape
    x = np.clip(x, 0.0, w - 1)
    y = np.clip(y, 0.0, h - 1)
    x0 = np.minimum(x.astype(np.int64), max(w - 2, 0))
    y0 = np.minimum(y.astype(np.int64), max(h - 2, 0))
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    top = field[limb, y0, x0] * (1 - fx) + field[limb, y0, x1] * fx
    bottom = field[limb, y1, x0] * (1 - fx) + field[limb, y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def _score_pairs(field: np.ndarray, limb, ia, ib, cells, pixels, height: float,
                 config: ParseConfig) -> tuple[np.ndarray, np.ndarray]:
    """PAF line integral of candidate limbs from peak ia to peak ib -> (score [n], passed [n])."""
    d_px = pixels[ib] - pixels[ia]
    length = np.hypot(d_px[:, 0], d_px[:, 1])
    nonzero = length > 1e-9
    unit = d_px / np.where(nonzero, length, 1.0)[:, None]
    t = np.linspace(0.0, 1.0, config.paf_samples)[None, :]
    a, b = cells[ia], cells[ib]
    xs = a[:, 0:1] + t * (b[:, 0:1] - a[:, 0:1])
    ys = a[:, 1:2] + t * (b[:, 1:2] - a[:, 1:2])
    vec = _bilinear(field, limb[:, None], xs, ys)
    proj = vec[..., 0] * unit[:, None, 0] + vec[..., 1] * unit[:, None, 1]  # [n, S]
    score = proj.mean(axis=1)
    if config.distance_prior > 0:
        score = score + np.minimum(config.distance_prior * height / np.where(nonzero, length, 1.0) - 1.0, 0.0)
    support = np.count_nonzero(proj > config.paf_threshold, axis=1)
    passed = nonzero & (support > config.min_support * config.paf_samples) & (score > 0)
    return score, passed


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
    limb, ia, ib = _all_pairs(part_start, limbs)
    # [19, H, W, 2]: each limb's (x, y) vector in one gather.
    field = np.ascontiguousarray(np.moveaxis(fields.pafs[_PAF_XY], 1, -1), dtype=np.float32)
    height = float(fields.image_size[1])
    keep_parts, score_parts = [], []
    for lo in range(0, len(limb), _MAX_PAIRS_PER_CHUNK):
        sl = slice(lo, lo + _MAX_PAIRS_PER_CHUNK)
        score, passed = _score_pairs(field, limb[sl], ia[sl], ib[sl], cells, pixels, height, config)
        keep_parts.append(lo + np.flatnonzero(passed))
        score_parts.append(score[passed])
    keep = np.concatenate(keep_parts) if keep_parts else np.zeros(0, np.int64)
    conn_score = np.concatenate(score_parts) if score_parts else np.zeros(0)
    limb_start = np.searchsorted(limb[keep], np.arange(NUM_LIMBS + 1)).astype(np.int32)
    return LimbCandidates(
        peak_xy=pixels.astype(np.float32), peak_cell=cells.astype(np.float32),
        peak_score=scores, part_start=part_start,
        conn_a=ia[keep].astype(np.int32), conn_b=ib[keep].astype(np.int32),
        conn_score=conn_score.astype(np.float32), limb_start=limb_start,
        image_size=(int(fields.image_size[0]), int(fields.image_size[1])))
