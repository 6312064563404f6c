"""Known skeletons for the parser tests and benchmark, and how to compare parsed people to them."""
from __future__ import annotations

import math

import numpy as np

from pipeline.skeleton import LIMBS, NUM_KEYPOINTS

#: A standing person seen from the front, height 1, centred at (0, 0), y down (COCO-18 order).
TEMPLATE = np.array([
    (0.0, -0.40), (0.0, -0.30), (-0.10, -0.29), (-0.13, -0.13), (-0.14, 0.02), (0.10, -0.29),
    (0.13, -0.13), (0.14, 0.02), (-0.06, 0.02), (-0.07, 0.24), (-0.07, 0.45), (0.06, 0.02),
    (0.07, 0.24), (0.07, 0.45), (-0.025, -0.43), (0.025, -0.43), (-0.05, -0.41), (0.05, -0.41),
])
#: Half the largest extent of a (rotated) template person, in person heights.
RADIUS = float(np.hypot(TEMPLATE[:, 0], TEMPLATE[:, 1]).max())


def person(cx: float, cy: float, height: float, angle: float = 0.0, jitter=None,
           visible=None) -> np.ndarray:
    """float [18, 3] (x, y, visibility) of a template person scaled to ``height`` pixels,
    rotated by ``angle`` radians about its centre (cx, cy), plus optional jitter [18, 2] in
    person heights and a visibility mask [18]."""
    xy = TEMPLATE + (0.0 if jitter is None else np.asarray(jitter))
    c, s = math.cos(angle), math.sin(angle)
    xy = xy @ np.array([[c, s], [-s, c]]) * height + (cx, cy)
    vis = np.ones(NUM_KEYPOINTS) if visible is None else np.asarray(visible, float)
    return np.concatenate([xy, vis[:, None]], axis=1)


def crop_to_image(skeletons: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """Mark parts outside the image ([0, W-1] x [0, H-1] pixels) as not visible."""
    sk = np.array(skeletons, dtype=np.float64)
    w, h = image_size
    inside = (sk[..., 0] >= 0) & (sk[..., 0] <= w - 1) & (sk[..., 1] >= 0) & (sk[..., 1] <= h - 1)
    sk[..., 2] = np.where(inside, sk[..., 2], 0.0)
    return sk


def grid_people(image_size: tuple[int, int], draws, min_height: float = 40.0,
                margin: float = 32.0) -> np.ndarray:
    """People on a grid of non-overlapping discs (gap >= margin pixels), one per row of draws
    [n, 4] = (size in 0..1, rotation in radians, dx and dy in -1..1 within the disc's slack)
    -> float [n, 18, 3]."""
    draws = np.asarray(draws, dtype=np.float64).reshape(-1, 4)
    n = len(draws)
    w, h = image_size
    cols = max(1, math.ceil(math.sqrt(n * w / h)))
    rows = max(1, math.ceil(n / cols))
    cw, ch = w / cols, h / rows
    out = []
    for k, (size, angle, dx, dy) in enumerate(draws):
        r, c = divmod(k, cols)
        biggest = max(min_height, (min(cw, ch) - margin) / (2 * RADIUS))
        height = min_height + size * (biggest - min_height)
        slack = max(0.0, (min(cw, ch) - margin) / 2 - RADIUS * height)
        out.append(person((c + 0.5) * cw + dx * slack, (r + 0.5) * ch + dy * slack, height, angle))
    return np.stack(out) if out else np.zeros((0, NUM_KEYPOINTS, 3))


def random_draws(n: int, rng: np.random.Generator) -> np.ndarray:
    """[n, 4] uniform draws for grid_people."""
    return np.stack([rng.uniform(0, 1, n), rng.uniform(-math.pi, math.pi, n),
                     rng.uniform(-1, 1, n), rng.uniform(-1, 1, n)], axis=1)


def expected_people(skeletons: np.ndarray, min_parts: int, limbs=LIMBS) -> list[np.ndarray]:
    """What a parser must find: each set of visible parts of one skeleton that the limbs connect,
    if it has at least ``min_parts`` parts -> list of float [18, 3] (invisible parts zeroed)."""
    out = []
    for sk in skeletons:
        parent = list(range(NUM_KEYPOINTS))

        def root(p: int) -> int:
            while parent[p] != p:
                p = parent[p]
            return p

        for a, b in limbs:
            if sk[a, 2] > 0 and sk[b, 2] > 0:
                parent[root(a)] = root(b)
        groups: dict[int, list[int]] = {}
        for p in np.flatnonzero(sk[:, 2] > 0):
            groups.setdefault(root(int(p)), []).append(int(p))
        for parts in groups.values():
            if len(parts) >= min_parts:
                one = np.zeros((NUM_KEYPOINTS, 3))
                one[parts] = sk[parts]
                out.append(one)
    return out


def assert_recovered(poses, expected: list[np.ndarray], tol_px: float) -> float:
    """Every expected person is found once, with exactly its parts, each within tol_px pixels;
    nothing else is found. Returns the worst keypoint error in pixels."""
    found = poses.keypoints
    assert len(found) == len(expected), f"found {len(found)} people, expected {len(expected)}"
    worst, used = 0.0, set()
    for e in expected:
        parts = e[:, 2] > 0
        errs = []
        for q in range(len(found)):
            if q in used or not np.array_equal(np.isfinite(found[q, :, 0]), parts):
                errs.append(np.inf)
                continue
            errs.append(float(np.abs(found[q, parts, :2] - e[parts, :2]).max()))
        q = int(np.argmin(errs))
        assert errs[q] <= tol_px, (f"person with parts {np.flatnonzero(parts).tolist()} at "
                                   f"{e[parts, :2].mean(0).round(1).tolist()} not recovered "
                                   f"within {tol_px}px (best error {errs[q]:.3f}px)")
        used.add(q)
        worst = max(worst, errs[q])
    return worst
