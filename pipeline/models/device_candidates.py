"""The GPU path's device-side code: network input from uint8 pixels, and limb candidates from a
batch of maps, both in torch on the network's device, so only compact candidates reach the host.

    x = network_input(pixels_u8, entry.preprocessing, resized_sizes)   # [N,H,W,3] u8 -> [N,3,H,W] f32
    heat, paf = model(x)                                                # maps stay on the device
    cands = find_candidates_torch(heat, paf, [MapGeometry.of_placement(p) for p in placements], cfg)
    poses = [pipeline.parsing.assemble(c, cfg) for c in cands]          # host, unchanged

``find_candidates_torch`` computes what ``pipeline.parsing.find_candidates`` computes on each
image's cropped maps (same peaks, same sub-pixel refinement, same PAF samples, same criteria) and
returns the same :class:`pipeline.parsing.LimbCandidates`. It works on a padded batch: each image's
maps are only its ``valid_cells``; cells beyond them are never peaks, never sampled and never
smoothed into the image. The numpy path's two pair filters (strong corners, interior probe) are
exact shortcuts, so here every pair simply gets the full line integral.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.models.registry import Preprocessing
from pipeline.parsing import LimbCandidates, ParseConfig
from pipeline.parsing.peaks import _cubic_upsampling_matrix
from pipeline.skeleton import LIMBS, NUM_HEATMAPS, NUM_KEYPOINTS, NUM_LIMBS, NUM_PAFS, PAF_CHANNELS

_LIMB_A = torch.tensor([a for a, _ in LIMBS])
_LIMB_B = torch.tensor([b for _, b in LIMBS])
_PAF_X = [x for x, _ in PAF_CHANNELS]
_PAF_Y = [y for _, y in PAF_CHANNELS]
_LOG_FLOOR = 1e-12
_MAX_PAIRS_PER_CHUNK = 1 << 18  # ~100 MB of temporaries per chunk at 10 samples


@dataclass(frozen=True)
class MapGeometry:
    """Where one image's maps sit in a padded batch of maps, and how its cells map to pixels.

    valid_cells: (columns, rows) of map cells holding the image (top-left of the batch's maps).
    scale, offset: cell (i, j) centre -> original pixel (j * scale[0] + offset[0], i * scale[1] + offset[1]).
    image_size:  (width, height) of the original image in pixels.
    """

    valid_cells: tuple[int, int]
    scale: tuple[float, float]
    offset: tuple[float, float]
    image_size: tuple[int, int]

    @classmethod
    def of_placement(cls, placement) -> "MapGeometry":
        """From a ``pipeline.models.preprocessing.Placement`` (one unflipped pass of one image)."""
        scale, offset = placement.cell_geometry()
        return cls(tuple(placement.valid_cells), scale, offset, tuple(placement.image_size))


# ---- uint8 hand-off -----------------------------------------------------------------------------------

def network_input(pixels: torch.Tensor, prep: Preprocessing,
                  resized_sizes: Sequence[tuple[int, int]] | None = None) -> torch.Tensor:
    """uint8 BGR canvases [N, H, W, 3] (0-255, on the device) -> the network's float32 input [N, 3, H, W].

    Equals ``pipeline.models.preprocessing.preprocess`` on the same resized pixels: channels reordered
    to ``prep.color``, pixels right of / below each image's ``resized_sizes[n]`` = (w, h) set to
    ``prep.pad_value`` (None: the canvases are already padded), then (pixel - mean) * scale. The
    result is a channels_last-strided view of the NHWC data (call ``.contiguous()`` for NCHW).
    """
    if not isinstance(pixels, torch.Tensor) or pixels.dtype != torch.uint8 or pixels.ndim != 4 \
            or pixels.shape[3] != 3:
        desc = f"{type(pixels).__name__} {getattr(pixels, 'dtype', '')} {tuple(getattr(pixels, 'shape', ()))}"
        raise ValueError(f"network_input needs a uint8 torch tensor [N, H, W, 3] of BGR pixels, got {desc}")
    n, h, w, _ = pixels.shape
    x = pixels.to(torch.float32)
    if prep.color == "RGB":
        x = x.flip(-1)
    if resized_sizes is not None:
        sizes = [tuple(int(v) for v in s) for s in resized_sizes]  # checked on the host: no device sync
        if len(sizes) != n or not all(len(s) == 2 and 1 <= s[0] <= w and 1 <= s[1] <= h for s in sizes):
            raise ValueError(f"network_input: resized_sizes {list(resized_sizes)} must give one (w, h) per "
                             f"image ({n}) within the {w}x{h} canvas")
        wh = torch.tensor(sizes, device=x.device).reshape(n, 2)
        cols = torch.arange(w, device=x.device)[None, None, :] < wh[:, 0, None, None]
        rows = torch.arange(h, device=x.device)[None, :, None] < wh[:, 1, None, None]
        x = x.masked_fill(~(rows & cols)[..., None], float(prep.pad_value))
    mean = torch.tensor(prep.mean, dtype=torch.float32, device=x.device)
    x = (x - mean) * torch.tensor(prep.scale, dtype=torch.float32, device=x.device)
    return x.permute(0, 3, 1, 2)


# ---- peaks --------------------------------------------------------------------------------------------

def _check_maps(heatmaps: torch.Tensor, pafs: torch.Tensor, geometry: Sequence[MapGeometry]):
    """Raise ValueError on bad shapes, dtypes, geometry or non-finite valid cells; returns
    (valid-cell mask bool [N, 1, h, w], valid columns int64 [N], valid rows int64 [N])."""
    for name, t, c in (("heatmaps", heatmaps, NUM_HEATMAPS), ("pafs", pafs, NUM_PAFS)):
        if not isinstance(t, torch.Tensor) or t.ndim != 4 or t.shape[1] != c or not t.is_floating_point():
            desc = f"{type(t).__name__} {getattr(t, 'dtype', '')} {tuple(getattr(t, 'shape', ()))}"
            raise ValueError(f"find_candidates_torch: {name} must be a float torch tensor [N, {c}, h, w], "
                             f"got {desc}")
    if heatmaps.shape[0] != pafs.shape[0] or heatmaps.shape[2:] != pafs.shape[2:]:
        raise ValueError(f"find_candidates_torch: heatmaps {tuple(heatmaps.shape)} and pafs "
                         f"{tuple(pafs.shape)} must share N, h and w")
    n, _, h, w = heatmaps.shape
    if len(geometry) != n:
        raise ValueError(f"find_candidates_torch: {len(geometry)} MapGeometry for {n} images")
    for k, g in enumerate(geometry):
        cols, rows = g.valid_cells
        if not (1 <= cols <= w and 1 <= rows <= h) or g.image_size[1] <= 0 \
                or not all(map(math.isfinite, (*g.scale, *g.offset))):
            raise ValueError(f"find_candidates_torch: image {k} has valid_cells {g.valid_cells} (maps are "
                             f"{w}x{h} cells), image_size {g.image_size}, scale {g.scale}, offset {g.offset}; "
                             "valid cells must fit the maps, the height be positive, scale/offset finite")
    cols, rows = _valid_cells(geometry, heatmaps.device)
    valid = ((torch.arange(h, device=heatmaps.device)[None, :, None] < rows[:, None, None])
             & (torch.arange(w, device=heatmaps.device)[None, None, :] < cols[:, None, None]))[:, None]
    bad = torch.stack([(~torch.isfinite(t) & valid).flatten(1).sum(1) for t in (heatmaps, pafs)]).cpu()
    for which, name in enumerate(("heatmaps", "pafs")):
        images = torch.nonzero(bad[which]).flatten().tolist()
        if images:
            raise ValueError(f"find_candidates_torch: {name} of image {images[0]} hold {int(bad[which, images[0]])} "
                             f"NaN/inf values in its valid cells (images with NaN/inf: {images}); the network "
                             "output is invalid: check the model weights, input preprocessing and precision "
                             "(fp16 overflow) before parsing")
    return valid, cols, rows


def _valid_cells(geometry: Sequence[MapGeometry], device) -> tuple[torch.Tensor, torch.Tensor]:
    """(columns int64 [N], rows int64 [N]) of valid cells per image."""
    cells = torch.tensor([g.valid_cells for g in geometry], dtype=torch.int64).reshape(-1, 2)
    return cells[:, 0].to(device), cells[:, 1].to(device)


def _smoothed(maps: torch.Tensor, sigma: float, cols: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Gaussian smoothing of [N, C, h, w] maps by ``sigma`` cells within each image's valid cells,
    edges extended (scipy.ndimage.gaussian_filter's mode "nearest" and kernel, truncate 4)."""
    n, c, h, w = maps.shape
    radius = int(4.0 * sigma + 0.5)
    taps = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 / sigma ** 2 * taps ** 2)
    kernel = (kernel / kernel.sum()).to(maps)
    # Replicate each image's own edge cells outwards (not the padding beyond them).
    yi = torch.minimum(torch.arange(-radius, h + radius, device=maps.device).clamp(min=0)[None], rows[:, None] - 1)
    xi = torch.minimum(torch.arange(-radius, w + radius, device=maps.device).clamp(min=0)[None], cols[:, None] - 1)
    batch = torch.arange(n, device=maps.device)[:, None, None, None]
    chan = torch.arange(c, device=maps.device)[None, :, None, None]
    padded = maps[batch, chan, yi[:, None, :, None], xi[:, None, None, :]]
    out = F.conv2d(padded.reshape(n * c, 1, h + 2 * radius, w + 2 * radius), kernel.view(1, 1, -1, 1))
    out = F.conv2d(out, kernel.view(1, 1, 1, -1))
    return out.reshape(n, c, h, w)


def _refine(line_m: torch.Tensor, line_0: torch.Tensor, line_p: torch.Tensor, mode: str) -> torch.Tensor:
    """Vertex offset (cells, relative to the middle sample) of the parabola through 3 float64 values."""
    if mode == "gaussian":
        line_m, line_0, line_p = (torch.log(v.clamp(min=_LOG_FLOOR)) for v in (line_m, line_0, line_p))
    curvature = line_m - 2.0 * line_0 + line_p
    concave = curvature < 0
    return torch.where(concave, (line_m - line_p) / (2.0 * torch.where(concave, curvature, -1.0)), 0.0)


def _subpixel_axis(maps, n, p, i, j, size: torch.Tensor, axis: int, mode: str) -> torch.Tensor:
    """Refined float64 coordinate along ``axis`` (2 = rows, 3 = columns) of peaks (n, p, i, j);
    ``size`` [K] = each peak's image's valid cells along that axis."""
    at = i if axis == 2 else j
    at64 = at.to(torch.float64)
    if mode == "none":
        return at64
    # Three samples centred on the peak, shifted inwards at the image's border (one-sided fit).
    c = torch.minimum(at.clamp(min=1), (size - 2).clamp(min=1)).clamp(max=maps.shape[axis] - 2)
    if axis == 2:
        vals = [maps[n, p, c + d, j] for d in (-1, 0, 1)]
    else:
        vals = [maps[n, p, i, c + d] for d in (-1, 0, 1)]
    vertex = c + _refine(*(v.to(torch.float64) for v in vals), mode)
    refined = torch.minimum(torch.maximum(vertex, at64 - 0.5), at64 + 0.5)
    return torch.where(size >= 3, refined, at64)


def _upsampling_weights(size: torch.Tensor, factor: int, at: torch.Tensor):
    """As ``pipeline.parsing.peaks.upsampling_window`` for peaks whose images have ``size`` [K]
    valid cells along the axis: (fine [K, L+2], inside [K, L+2], weights float32 [K, L+2, 7])."""
    device = at.device
    lo = factor * at - factor + factor // 2  # first fine cell whose centre is >= at - 1
    span = 2 * factor + 1 - (1 - factor % 2)  # fine centres in [at - 1, at + 1]
    fine = lo[:, None] - 1 + torch.arange(span + 2, device=device)
    inside = (fine >= 0) & (fine < size[:, None] * factor)
    taps = at[:, None] + torch.arange(-3, 4, device=device)
    sizes = sorted(set(size.tolist()))
    biggest = max(sizes, default=1)
    stack = torch.zeros(len(sizes), biggest * factor, biggest)
    for k, s in enumerate(sizes):
        stack[k, :s * factor, :s] = torch.from_numpy(_cubic_upsampling_matrix(s, factor))
    stack = stack.to(device)
    which = torch.searchsorted(torch.tensor(sizes, device=device), size)
    fine_c = torch.minimum(fine.clamp(min=0), size[:, None] * factor - 1)
    taps_c = torch.minimum(taps.clamp(min=0), size[:, None] - 1)
    weights = stack[which[:, None, None], fine_c[:, :, None], taps_c[:, None, :]]
    weights = weights * ((taps >= 0) & (taps < size[:, None]))[:, None, :]
    return fine, inside, weights


def _upsampled_peaks(maps, n, p, i, j, cols, rows, config: ParseConfig) -> torch.Tensor:
    """As ``pipeline.parsing.peaks._upsampled_peaks``: the highest bicubic fine cell within one map
    cell of each peak, then the sub-pixel fit on the fine grid -> float64 cells [K, 2] (x, y)."""
    f = config.upsample
    fine_y, in_y, wy = _upsampling_weights(rows, f, i)
    fine_x, in_x, wx = _upsampling_weights(cols, f, j)
    window = torch.arange(-3, 4, device=maps.device)
    ty = torch.minimum((i[:, None] + window).clamp(min=0), rows[:, None] - 1)
    tx = torch.minimum((j[:, None] + window).clamp(min=0), cols[:, None] - 1)
    patch = maps[n[:, None, None], p[:, None, None], ty[:, :, None], tx[:, None, :]]  # [K, 7, 7]
    fine = torch.matmul(torch.matmul(wy, patch), wx.transpose(1, 2))  # [K, L+2, L+2]
    k, size = len(n), fine.shape[1]
    allowed = in_y[:, :, None] & in_x[:, None, :]
    allowed[:, [0, -1], :] = False  # the extra ring is only for the fit
    allowed[:, :, [0, -1]] = False
    best = torch.argmax(torch.where(allowed, fine, -torch.inf).reshape(k, size * size), dim=1)
    a, b = best // size, best % size
    peak = torch.arange(k, device=maps.device)

    def refine(at, inside, cells, line) -> torch.Tensor:
        """Sub-pixel fine-cell coordinate along one axis; ``line(t)`` gives fine[.., t, ..]."""
        # Three samples centred on the best cell, shifted inwards where one is off the map.
        c = at + (~inside[peak, at - 1]).long() - (~inside[peak, at + 1]).long()
        vals = [line(c + d).to(torch.float64) for d in (-1, 0, 1)]
        at64 = at.to(torch.float64)
        fitted = torch.minimum(torch.maximum(c + _refine(*vals, config.subpixel), at64 - 0.5), at64 + 0.5) - 1
        plain = at64 - 1
        return plain if config.subpixel == "none" else torch.where(cells * f >= 3, fitted, plain)

    y = fine_y[:, 1] + refine(a, in_y, rows, lambda t: fine[peak, t, b])
    x = fine_x[:, 1] + refine(b, in_x, cols, lambda t: fine[peak, a, t])
    return (torch.stack([x, y], dim=1) + 0.5) / f - 0.5


def _find_peaks(maps: torch.Tensor, valid: torch.Tensor, cols, rows, config: ParseConfig):
    """Peaks of part maps [N, 18, h, w] -> (n, part, cells float64 [K, 2] (x, y), scores float32 [K]),
    ordered by image, part, then raster order within the part (as ``pipeline.parsing.peaks``)."""
    masked = maps.masked_fill(~valid, -torch.inf)
    h, w = maps.shape[2:]
    ring = F.pad(masked, (1, 1, 1, 1), value=-torch.inf)
    # Raster-earlier neighbours must be strictly lower (ties there lose): one peak per flat plateau.
    earlier = torch.stack([ring[:, :, 1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
                           for dy, dx in ((-1, -1), (-1, 0), (-1, 1), (0, -1))]).amax(0)
    is_peak = ((masked > config.peak_threshold) & (masked >= F.max_pool2d(masked, 3, 1, 1))
               & (masked > earlier))
    n, p, i, j = torch.nonzero(is_peak).unbind(1)
    scores = maps[n, p, i, j]
    group = n * NUM_KEYPOINTS + p
    counts = torch.bincount(group, minlength=maps.shape[0] * NUM_KEYPOINTS)
    if len(group) and int(counts.max()) > config.max_peaks:
        by_score = torch.argsort(-scores, stable=True)
        order = by_score[torch.argsort(group[by_score], stable=True)]  # per group, strongest first
        first = torch.cumsum(counts, 0) - counts
        rank = torch.empty_like(order)
        rank[order] = torch.arange(len(order), device=maps.device) - first[group[order]]
        keep = rank < config.max_peaks
        n, p, i, j, scores = n[keep], p[keep], i[keep], j[keep], scores[keep]
    if len(n) == 0:
        return n, p, torch.zeros(0, 2, dtype=torch.float64, device=maps.device), scores
    if config.upsample > 1:
        cells = _upsampled_peaks(maps, n, p, i, j, cols[n], rows[n], config)
    else:
        x = _subpixel_axis(maps, n, p, i, j, cols[n], 3, config.subpixel)
        y = _subpixel_axis(maps, n, p, i, j, rows[n], 2, config.subpixel)
        cells = torch.stack([x, y], dim=1)
    return n, p, cells, scores


# ---- limb scoring -------------------------------------------------------------------------------------

def _all_pairs(counts: torch.Tensor, limbs: torch.Tensor):
    """Every (part-a peak, part-b peak) pair of each limb in each image, from peak counts
    [N, 18] -> (image, limb, ia, ib) int64 [M], ordered by image, limb, ia, ib; ia/ib index the
    batch's peaks (ordered by image then part)."""
    device = counts.device
    start = (torch.cumsum(counts.flatten(), 0) - counts.flatten()).reshape(counts.shape)
    na, nb = counts[:, _LIMB_A.to(device)[limbs]], counts[:, _LIMB_B.to(device)[limbs]]  # [N, L]
    sizes = (na * nb).flatten()
    total = int(sizes.sum())
    block = torch.repeat_interleave(torch.arange(len(sizes), device=device), sizes, output_size=total)
    local = torch.arange(total, device=device) - (torch.cumsum(sizes, 0) - sizes)[block]
    image, limb_pos = block // len(limbs), block % len(limbs)
    limb = limbs[limb_pos]
    nb_rep = nb.flatten()[block].clamp(min=1)
    ia = start[image, _LIMB_A.to(device)[limb]] + local // nb_rep
    ib = start[image, _LIMB_B.to(device)[limb]] + local % nb_rep
    return image, limb, ia, ib


def _score_pairs(field: torch.Tensor, image, limb, ia, ib, cells32, pixels, cols, rows, heights,
                 config: ParseConfig):
    """PAF line integral of candidate limbs ia -> ib (as ``pipeline.parsing.candidates``) ->
    (score float64 [M], passed bool [M]). ``field`` float32 [N, 19, h, w, 2]: each limb's (x, y) PAF."""
    _, _, h_map, w_map, _ = field.shape
    flat = field.reshape(-1, 2)
    s = config.paf_samples
    t = torch.linspace(0.0, 1.0, s, dtype=torch.float32, device=field.device)[None, :]
    start, end = cells32[ia], cells32[ib]
    x = start[:, 0, None] + t * (end[:, 0] - start[:, 0])[:, None]  # [M, S] map cells, float32
    y = start[:, 1, None] + t * (end[:, 1] - start[:, 1])[:, None]
    w, h = cols[image].to(torch.float32)[:, None], rows[image].to(torch.float32)[:, None]
    x = torch.minimum(x.clamp(min=0.0), w - 1)
    y = torch.minimum(y.clamp(min=0.0), h - 1)
    x0 = torch.minimum(torch.floor(x), (w - 2).clamp(min=0))
    y0 = torch.minimum(torch.floor(y), (h - 2).clamp(min=0))
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    base = (image * NUM_LIMBS + limb)[:, None] * h_map
    i00 = (base + y0.long()) * w_map + x0.long()
    dx = (w > 1).long()
    dy = (h > 1).long() * w_map
    top, top_right = flat[i00], flat[i00 + dx]
    top = top + (top_right - top) * fx
    bottom, bottom_right = flat[i00 + dy], flat[i00 + dy + dx]
    bottom = bottom + (bottom_right - bottom) * fx
    vec = top + (bottom - top) * fy  # [M, S, 2]
    d_px = pixels[ib] - pixels[ia]
    length = torch.hypot(d_px[:, 0], d_px[:, 1])
    unit = (d_px / length.clamp(min=1e-300)[:, None]).to(torch.float32)
    proj = vec[..., 0] * unit[:, 0, None] + vec[..., 1] * unit[:, 1, None]
    score = proj.to(torch.float64).mean(dim=1)
    if config.distance_prior > 0:
        score = score + torch.clamp(config.distance_prior * heights[image] / length - 1.0, max=0.0)
    support = torch.count_nonzero(proj > config.paf_threshold, dim=1)
    passed = (length > 1e-6) & (support > config.min_support * s) & (score > 0)
    return score, passed


# ---- the batch entry point ----------------------------------------------------------------------------

@torch.inference_mode()
def find_candidates_torch(heatmaps: torch.Tensor, pafs: torch.Tensor, geometry: Sequence[MapGeometry],
                          config: ParseConfig = ParseConfig()) -> list[LimbCandidates]:
    """Part peaks and scored candidate limbs of a batch of images, computed on the maps' device.

    heatmaps: float tensor [N, 19, h, w]; pafs: float tensor [N, 38, h, w] (any float dtype; computed
    in float32, refinement in float64), the network's output for a batch of padded inputs.
    geometry: one :class:`MapGeometry` per image (its valid cells and cell -> pixel transform).
    Returns one :class:`pipeline.parsing.LimbCandidates` per image, equal to
    ``pipeline.parsing.find_candidates`` on that image's cropped maps; only these (peaks and kept
    limbs) are copied to the host. Raises ValueError on bad shapes/geometry or NaN/inf valid cells.
    """
    valid, cols, rows = _check_maps(heatmaps, pafs, geometry)
    device = heatmaps.device
    count = heatmaps.shape[0]
    maps = heatmaps[:, :NUM_KEYPOINTS].to(torch.float32).contiguous()  # NCHW even from a channels_last network
    if config.smooth_sigma > 0:
        maps = _smoothed(maps, config.smooth_sigma, cols, rows)
    n, p, cells, scores = _find_peaks(maps, valid, cols, rows, config)
    scale = torch.tensor([g.scale for g in geometry], dtype=torch.float64, device=device).reshape(-1, 2)
    offset = torch.tensor([g.offset for g in geometry], dtype=torch.float64, device=device).reshape(-1, 2)
    heights = torch.tensor([float(g.image_size[1]) for g in geometry], dtype=torch.float64, device=device)
    pixels = cells * scale[n] + offset[n]
    counts = torch.bincount(n * NUM_KEYPOINTS + p, minlength=count * NUM_KEYPOINTS).reshape(count, NUM_KEYPOINTS)
    limbs = torch.arange(NUM_LIMBS if config.redundant_limbs else NUM_LIMBS - 2, device=device)
    image, limb, ia, ib = _all_pairs(counts, limbs)
    field = torch.stack([pafs[:, _PAF_X], pafs[:, _PAF_Y]], dim=-1).to(torch.float32)  # [N, 19, h, w, 2]
    cells32 = cells.to(torch.float32)
    kept, kept_score = [], []
    for lo in range(0, len(ia), _MAX_PAIRS_PER_CHUNK):
        sl = slice(lo, lo + _MAX_PAIRS_PER_CHUNK)
        score, passed = _score_pairs(field, image[sl], limb[sl], ia[sl], ib[sl], cells32, pixels,
                                     cols, rows, heights, config)
        kept.append(lo + torch.nonzero(passed).flatten())
        kept_score.append(score[passed])
    keep = torch.cat(kept) if kept else torch.zeros(0, dtype=torch.int64, device=device)
    conn_score = torch.cat(kept_score) if kept_score else torch.zeros(0, dtype=torch.float64, device=device)
    # The only device -> host copies: peaks and kept limbs.
    host = {name: t.cpu().numpy() for name, t in (
        ("cells", cells), ("scores", scores), ("counts", counts), ("image", image[keep]),
        ("limb", limb[keep]), ("ia", ia[keep]), ("ib", ib[keep]), ("score", conn_score))}
    return _split_by_image(host, geometry)


def _split_by_image(host: dict, geometry: Sequence[MapGeometry]) -> list[LimbCandidates]:
    """Host numpy arrays of the whole batch -> one LimbCandidates per image."""
    peak_end = np.cumsum(host["counts"].sum(axis=1))
    conn_end = np.searchsorted(host["image"], np.arange(len(geometry)), side="right")
    out = []
    for k, g in enumerate(geometry):
        first = int(peak_end[k - 1]) if k else 0
        lo, hi = (int(conn_end[k - 1]) if k else 0), int(conn_end[k])
        cells = host["cells"][first:int(peak_end[k])]
        pixels = cells * np.asarray(g.scale, np.float64) + np.asarray(g.offset, np.float64)
        part_start = np.concatenate([[0], np.cumsum(host["counts"][k])]).astype(np.int32)
        limb = host["limb"][lo:hi]
        out.append(LimbCandidates(
            peak_xy=pixels.astype(np.float32), peak_cell=cells.astype(np.float32),
            peak_score=host["scores"][first:int(peak_end[k])].astype(np.float32), part_start=part_start,
            conn_a=(host["ia"][lo:hi] - first).astype(np.int32), conn_b=(host["ib"][lo:hi] - first).astype(np.int32),
            conn_score=host["score"][lo:hi].astype(np.float32),
            limb_start=np.searchsorted(limb, np.arange(NUM_LIMBS + 1)).astype(np.int32),
            image_size=(int(g.image_size[0]), int(g.image_size[1]))))
    return out
