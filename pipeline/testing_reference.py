"""A straightforward reference PAF parser: per-peak, per-candidate-pair, per-sample Python loops
in the style of the OpenPose Python demo, with the same rules and thresholds as
pipeline.parsing. The baseline bench/parse_speed.py times the vectorised parser against, and
the independent answer tests/parsing compare it with.

It shares only the bicubic upsampling weights (``upsampling_window``) and the optional
Gaussian smoothing with the package; peak finding, sub-pixel refinement, limb scoring,
matching and assembly are written out independently.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.optimize import linear_sum_assignment

from pipeline.fields import PoseFields
from pipeline.parsing import ParseConfig
from pipeline.parsing.peaks import smoothed_maps, upsampling_window
from pipeline.poses import Poses
from pipeline.skeleton import LIMBS, NUM_KEYPOINTS, PAF_CHANNELS


def _vertex(m: float, c: float, p: float, mode: str) -> float:
    if mode == "gaussian":
        m, c, p = (math.log(max(v, 1e-12)) for v in (m, c, p))
    curvature = m - 2 * c + p
    return (m - p) / (2 * curvature) if curvature < 0 else 0.0


def _fit(get, at: int, lo: int, hi: int, mode: str) -> float:
    """Sub-pixel coordinate near integer ``at`` from values get(k), k in [lo, hi]."""
    if mode == "none" or hi - lo < 2:
        return float(at)
    c = min(max(at, lo + 1), hi - 1)
    v = c + _vertex(get(c - 1), get(c), get(c + 1), mode)
    return min(max(v, at - 0.5), at + 0.5)


def reference_peaks(fields: PoseFields, config: ParseConfig) -> list[list[tuple[float, float, float]]]:
    """Per part, a list of (x, y, score) with x, y in map cells, in raster order."""
    maps = smoothed_maps(fields.heatmaps, config)
    f = config.upsample
    out = []
    for part in range(NUM_KEYPOINTS):
        m = maps[part]
        h, w = m.shape
        padded = np.pad(m, 1, constant_values=-np.inf)
        c = padded[1:-1, 1:-1]
        ok = c > config.peak_threshold
        for dy, dx in ((-1, -1), (-1, 0), (-1, 1), (0, -1)):
            ok &= c > padded[1 + dy:h + 1 + dy, 1 + dx:w + 1 + dx]
        for dy, dx in ((0, 1), (1, -1), (1, 0), (1, 1)):
            ok &= c >= padded[1 + dy:h + 1 + dy, 1 + dx:w + 1 + dx]
        peaks = []
        for i, j in zip(*np.nonzero(ok)):
            i, j = int(i), int(j)
            if f == 1:
                x = _fit(lambda k: float(m[i, k]), j, 0, w - 1, config.subpixel)
                y = _fit(lambda k: float(m[k, j]), i, 0, h - 1, config.subpixel)
            else:
                x, y = _upsampled_peak(m, i, j, f, config.subpixel)
            peaks.append((x, y, float(m[i, j])))
        # Keep the max_peaks strongest, still in raster order.
        strongest = set(sorted(range(len(peaks)), key=lambda n: -peaks[n][2])[:config.max_peaks])
        out.append([p for n, p in enumerate(peaks) if n in strongest])
    return out


def _upsampled_peak(m: np.ndarray, i: int, j: int, f: int, mode: str) -> tuple[float, float]:
    """One peak refined on the bicubic upsampling of the cells around it (map cells)."""
    h, w = m.shape
    fy, in_y, wy = (a[0] for a in upsampling_window(h, f, np.array([i])))
    fx, in_x, wx = (a[0] for a in upsampling_window(w, f, np.array([j])))
    patch = np.zeros((7, 7))
    for a in range(7):
        for b in range(7):
            ii, jj = i - 3 + a, j - 3 + b
            if 0 <= ii < h and 0 <= jj < w:
                patch[a, b] = m[ii, jj]
    fine = wy.astype(np.float64) @ patch @ wx.astype(np.float64).T
    best, ba, bb = -np.inf, 0, 0
    for a in range(1, len(fy) - 1):
        for b in range(1, len(fx) - 1):
            if in_y[a] and in_x[b] and fine[a, b] > best:
                best, ba, bb = fine[a, b], a, b
    lo_y, hi_y = min(t for t in range(len(fy)) if in_y[t]), max(t for t in range(len(fy)) if in_y[t])
    lo_x, hi_x = min(t for t in range(len(fx)) if in_x[t]), max(t for t in range(len(fx)) if in_x[t])
    if h * f < 3:
        lo_y, hi_y = ba, ba
    if w * f < 3:
        lo_x, hi_x = bb, bb
    y = fy[0] + _fit(lambda t: float(fine[t, bb]), ba, lo_y, hi_y, mode)
    x = fx[0] + _fit(lambda t: float(fine[ba, t]), bb, lo_x, hi_x, mode)
    return (x + 0.5) / f - 0.5, (y + 0.5) / f - 0.5


def _sample(pafs: np.ndarray, channel: int, x: float, y: float) -> float:
    h, w = pafs.shape[1:]
    x, y = min(max(x, 0.0), w - 1), min(max(y, 0.0), h - 1)
    x0, y0 = min(int(x), max(w - 2, 0)), min(int(y), max(h - 2, 0))
    x1, y1 = min(x0 + 1, w - 1), min(y0 + 1, h - 1)
    fx, fy = x - x0, y - y0
    m = pafs[channel]
    top = float(m[y0, x0]) * (1 - fx) + float(m[y0, x1]) * fx
    bottom = float(m[y1, x0]) * (1 - fx) + float(m[y1, x1]) * fx
    return top * (1 - fy) + bottom * fy


def reference_parse(fields: PoseFields, config: ParseConfig = ParseConfig()) -> Poses:
    """Same contract as pipeline.parsing.parse (finite, well-formed input assumed)."""
    peaks = reference_peaks(fields, config)
    sx, sy = fields.scale
    ox, oy = fields.offset
    cand = []  # global list: (part, x_px, y_px, score, x_cell, y_cell)
    ids = []
    for part, plist in enumerate(peaks):
        ids.append([])
        for x, y, s in plist:
            ids[part].append(len(cand))
            cand.append((part, x * sx + ox, y * sy + oy, s, x, y))
    height = fields.image_size[1]
    n = config.paf_samples
    num_limbs = len(LIMBS) if config.redundant_limbs else len(LIMBS) - 2
    connections = []
    for k in range(num_limbs):
        a, b = LIMBS[k]
        cx, cy = PAF_CHANNELS[k]
        scored = []
        for ga in ids[a]:
            for gb in ids[b]:
                _, xa, ya, _, ca_x, ca_y = cand[ga]
                _, xb, yb, _, cb_x, cb_y = cand[gb]
                length = math.hypot(xb - xa, yb - ya)
                if length <= 1e-6:
                    continue
                ux, uy = (xb - xa) / length, (yb - ya) / length
                proj = []
                for s in range(n):
                    t = s / (n - 1)
                    px, py = ca_x + t * (cb_x - ca_x), ca_y + t * (cb_y - ca_y)
                    proj.append(_sample(fields.pafs, cx, px, py) * ux + _sample(fields.pafs, cy, px, py) * uy)
                score = sum(proj) / n
                if config.distance_prior > 0:
                    score += min(config.distance_prior * height / length - 1, 0)
                if sum(p > config.paf_threshold for p in proj) > config.min_support * n and score > 0:
                    scored.append((ga, gb, score))
        if config.matching == "greedy":
            chosen, used_a, used_b = [], set(), set()
            for ga, gb, s in sorted(scored, key=lambda c: -c[2]):
                if ga not in used_a and gb not in used_b:
                    used_a.add(ga)
                    used_b.add(gb)
                    chosen.append((ga, gb, s))
        else:
            weight = np.zeros((len(ids[a]), len(ids[b])))
            for ga, gb, s in scored:
                weight[ids[a].index(ga), ids[b].index(gb)] = s
            rows, cols = linear_sum_assignment(weight, maximize=True)
            chosen = [(ids[a][r], ids[b][c], weight[r, c]) for r, c in zip(rows, cols) if weight[r, c] > 0]
            chosen.sort(key=lambda c: -c[2])
        connections.append(chosen)

    # OpenPose's subset rows: 18 peak ids (-1 missing), then total score and part count.
    subsets: list[list[float]] = []
    for k in range(num_limbs):
        a, b = LIMBS[k]
        for ga, gb, s in connections[k]:
            found = [j for j, row in enumerate(subsets) if row[a] == ga or row[b] == gb]
            if len(found) == 2 or (len(found) == 1 and subsets[found[0]][a] == ga and subsets[found[0]][b] == gb):
                if len(found) == 1:
                    continue  # both parts already in this person
                j1, j2 = found if subsets[found[0]][a] == ga else found[::-1]
                r1, r2 = subsets[j1], subsets[j2]
                if any(r1[p] >= 0 and r2[p] >= 0 for p in range(NUM_KEYPOINTS)):
                    continue
                for p in range(NUM_KEYPOINTS):
                    if r2[p] >= 0:
                        r1[p] = r2[p]
                r1[18] += r2[18] + s
                r1[19] += r2[19]
                del subsets[j2]
            elif len(found) == 1:
                row = subsets[found[0]]
                part, peak = (b, gb) if row[a] == ga else (a, ga)
                if row[part] >= 0:
                    continue
                row[part] = peak
                row[18] += cand[peak][3] + s
                row[19] += 1
            elif k < len(LIMBS) - 2:
                row = [-1] * NUM_KEYPOINTS + [cand[ga][3] + cand[gb][3] + s, 2]
                row[a], row[b] = ga, gb
                subsets.append(row)
    people = [r for r in subsets if r[19] >= config.min_parts and r[18] / r[19] >= config.min_mean_score]
    people.sort(key=lambda r: -r[18])
    people = people[:config.max_people]
    kps = np.zeros((len(people), NUM_KEYPOINTS, 3), np.float32)
    for q, row in enumerate(people):
        for p in range(NUM_KEYPOINTS):
            kps[q, p] = (cand[row[p]][1], cand[row[p]][2], cand[row[p]][3]) if row[p] >= 0 else (np.nan, np.nan, 0)
    return Poses(keypoints=kps, scores=np.array([r[18] / (2 * NUM_KEYPOINTS - 1) for r in people], np.float32))
