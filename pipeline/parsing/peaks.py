"""Part candidates: smoothing, 3x3 non-maximum suppression and sub-pixel refinement of the 18
part confidence maps, optionally on a bicubic upsampling around each peak (numpy/scipy only)."""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.ndimage import gaussian_filter

from pipeline.parsing.config import ParseConfig
from pipeline.skeleton import NUM_KEYPOINTS

# Neighbours that come earlier in raster order must be strictly lower (ties there lose), later
# ones lower or equal: a flat two-cell plateau gives exactly one peak.
_EARLIER = ((-1, -1), (-1, 0), (-1, 1), (0, -1))
_LATER = ((0, 1), (1, -1), (1, 0), (1, 1))
_LOG_FLOOR = 1e-12


@lru_cache(maxsize=32)
def _cubic_upsampling_matrix(n: int, factor: int) -> np.ndarray:
    """float32 [n * factor, n]: bicubic (Keys, a = -0.5) interpolation from n cells to n * factor.

    Fine cell u has its centre at coarse-cell coordinate (u + 0.5) / factor - 0.5 (centres
    convention, as OpenCV's resize). Beyond the edge the map is extended linearly (not by
    repeating the edge cell, whose cubic overshoot would make false peaks on a map that falls
    towards the border).
    """
    src = (np.arange(n * factor) + 0.5) / factor - 0.5
    base = np.floor(src).astype(np.int64)
    frac = src - base
    out = np.zeros((n * factor, n), np.float64)
    rows = np.arange(n * factor)
    for k in range(-1, 3):
        d = np.abs(frac - k)
        w = np.where(d <= 1, 1.5 * d ** 3 - 2.5 * d ** 2 + 1,
                     np.where(d < 2, -0.5 * d ** 3 + 2.5 * d ** 2 - 4 * d + 2, 0.0))
        m = base + k
        if n == 1:
            np.add.at(out, (rows, 0), w)
            continue
        # f(m) for m < 0: (1 - m) f(0) + m f(1); for m > n-1 with e = m - (n-1): (1 + e) f(n-1) - e f(n-2).
        low, high = np.minimum(m, 0), np.maximum(m - (n - 1), 0)
        inside = np.clip(m, 0, n - 1)
        np.add.at(out, (rows, inside), w * (1 - low + high))
        np.add.at(out, (rows, np.where(m < 0, 1, n - 2)), w * np.where(m < 0, low, -high))
    return out.astype(np.float32)


def smoothed_maps(heatmaps: np.ndarray, config: ParseConfig) -> np.ndarray:
    """The 18 part maps [18, H, W] as float32, Gaussian-smoothed by config.smooth_sigma cells."""
    maps = np.asarray(heatmaps[:NUM_KEYPOINTS], dtype=np.float32)
    if config.smooth_sigma > 0:
        maps = gaussian_filter(maps, sigma=(0, config.smooth_sigma, config.smooth_sigma), mode="nearest")
    return maps


def upsampling_window(n: int, factor: int, at: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fine cells within one map cell of map cells ``at`` [K] along an axis of n cells, upsampled
    by ``factor`` -> (fine [K, L+2] fine-cell indices, one extra on each side for the fit; inside
    [K, L+2] whether each is on the map; weights [K, L+2, 7] bicubic weights of map cells
    at - 3 .. at + 3, zero off the map)."""
    lo = factor * at - factor + factor // 2  # first fine cell whose centre is >= at - 1
    size = 2 * factor + 1 - (1 - factor % 2)  # fine centres in [at - 1, at + 1]
    fine = lo[:, None] - 1 + np.arange(size + 2)
    inside = (fine >= 0) & (fine < n * factor)
    taps = at[:, None] + np.arange(-3, 4)
    matrix = _cubic_upsampling_matrix(n, factor)
    weights = matrix[np.clip(fine, 0, n * factor - 1)[:, :, None], np.clip(taps, 0, n - 1)[:, None, :]]
    weights = weights * ((taps >= 0) & (taps < n))[:, None, :]
    return fine, inside, weights


def _upsampled_peaks(maps: np.ndarray, ch, i, j, config: ParseConfig) -> np.ndarray:
    """Refine map peaks on the bicubic upsampling (by config.upsample) of the map around them
    -> cells float64 [K, 2] (x, y): the highest fine cell whose centre is within one map cell
    of the peak, then the sub-pixel fit on the fine grid."""
    f = config.upsample
    _, h, w = maps.shape
    fine_y, in_y, wy = upsampling_window(h, f, i)
    fine_x, in_x, wx = upsampling_window(w, f, j)
    ty = np.clip(i[:, None] + np.arange(-3, 4), 0, h - 1)
    tx = np.clip(j[:, None] + np.arange(-3, 4), 0, w - 1)
    patch = maps[ch[:, None, None], ty[:, :, None], tx[:, None, :]]  # [K, 7, 7]
    fine = np.matmul(np.matmul(wy, patch), wx.transpose(0, 2, 1))  # [K, L+2, L+2]
    k, size = len(ch), fine.shape[1]
    allowed = in_y[:, :, None] & in_x[:, None, :]
    allowed[:, [0, -1], :] = False  # the extra ring is only for the fit
    allowed[:, :, [0, -1]] = False
    best = np.argmax(np.where(allowed, fine, -np.inf).reshape(k, size * size), axis=1)
    a, b = np.divmod(best, size)
    rows = np.arange(k)

    def refine(at, inside, n, line) -> np.ndarray:
        """Sub-pixel fine-cell coordinate along one axis; ``line(t)`` gives fine[.., t, ..]."""
        if config.subpixel == "none" or n * f < 3:
            return (at - 1).astype(np.float64)
        # Three samples centred on the best cell, shifted inwards where one is off the map.
        c = at + ~inside[rows, at - 1] - ~inside[rows, at + 1]
        vals = [line(c + d).astype(np.float64) for d in (-1, 0, 1)]
        return np.clip(c + _refine(*vals, config.subpixel), at - 0.5, at + 0.5) - 1

    y = fine_y[:, 1] + refine(a, in_y, h, lambda t: fine[rows, t, b])
    x = fine_x[:, 1] + refine(b, in_x, w, lambda t: fine[rows, a, t])
    return (np.stack([x, y], axis=1) + 0.5) / f - 0.5


def _refine(line_m: np.ndarray, line_0: np.ndarray, line_p: np.ndarray, mode: str) -> np.ndarray:
    """Vertex offset (in cells, relative to the middle sample) of the parabola through 3 values."""
    if mode == "gaussian":
        line_m, line_0, line_p = (np.log(np.maximum(v, _LOG_FLOOR)) for v in (line_m, line_0, line_p))
    curvature = line_m - 2.0 * line_0 + line_p
    concave = curvature < 0
    return np.where(concave, (line_m - line_p) / (2.0 * np.where(concave, curvature, -1.0)), 0.0)


def _subpixel_axis(maps: np.ndarray, ch, i, j, axis: int, mode: str) -> np.ndarray:
    """Refined coordinate along ``axis`` (1 = rows, 2 = columns) of peaks at (ch, i, j)."""
    at = i if axis == 1 else j
    n = maps.shape[axis]
    if mode == "none" or n < 3:
        return at.astype(np.float64)
    # Three samples centred on the peak, shifted inwards at the map border (one-sided fit).
    c = np.clip(at, 1, n - 2)
    if axis == 1:
        vals = [maps[ch, c + d, j] for d in (-1, 0, 1)]
    else:
        vals = [maps[ch, i, c + d] for d in (-1, 0, 1)]
    vals = [v.astype(np.float64) for v in vals]
    vertex = c + _refine(*vals, mode)
    return np.clip(vertex, at - 0.5, at + 0.5)


def find_peaks(heatmaps: np.ndarray, config: ParseConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Peaks of the 18 part maps of ``heatmaps`` [19, H, W] (background channel ignored).

    Returns (part_start int32 [19], cells float64 [K, 2], scores float32 [K]): the peaks of part p
    are rows part_start[p]:part_start[p+1], in raster order; ``cells`` holds their sub-pixel
    (x, y) in map cells of the input maps (cell centres at integers) and ``scores`` the
    (smoothed) map's value at the peak cell. At most ``config.max_peaks`` per part are kept
    (highest first).
    """
    maps = smoothed_maps(heatmaps, config)
    _, h, w = maps.shape
    # Only cells above the threshold can be peaks: compare just those with their 8 neighbours
    # (outside the map counts as -inf), dropping losers as we go.
    flat = maps.reshape(-1)
    idx = np.flatnonzero(flat > config.peak_threshold)
    ch, rest = np.divmod(idx, h * w)
    i, j = np.divmod(rest, w)
    value = flat.take(idx)
    for offsets, strict in ((_EARLIER, True), (_LATER, False)):
        for dy, dx in offsets:
            inside = (i + dy >= 0) & (i + dy < h) & (j + dx >= 0) & (j + dx < w)
            neighbour = np.where(inside, flat.take(np.where(inside, idx + (dy * w + dx), idx)), -np.inf)
            won = np.flatnonzero((value > neighbour) if strict else (value >= neighbour))
            idx, ch, i, j, value = idx[won], ch[won], i[won], j[won], value[won]
    scores = value
    counts = np.bincount(ch, minlength=NUM_KEYPOINTS)
    if counts.max(initial=0) > config.max_peaks:
        keep = np.ones(len(ch), bool)
        start = np.concatenate([[0], np.cumsum(counts)])
        for p in np.flatnonzero(counts > config.max_peaks):
            sl = slice(start[p], start[p + 1])
            weakest = np.argsort(-scores[sl], kind="stable")[config.max_peaks:]
            keep[start[p] + weakest] = False
        ch, i, j, scores = ch[keep], i[keep], j[keep], scores[keep]
        counts = np.bincount(ch, minlength=NUM_KEYPOINTS)
    part_start = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    if config.upsample > 1:
        cells = _upsampled_peaks(maps, ch, i, j, config)
    else:
        x = _subpixel_axis(maps, ch, i, j, 2, config.subpixel)
        y = _subpixel_axis(maps, ch, i, j, 1, config.subpixel)
        cells = np.stack([x, y], axis=1)
    return part_start, cells, scores.astype(np.float32)
