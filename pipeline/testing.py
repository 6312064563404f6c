"""Helpers shared by the tests and the benchmarks (importable, so neither edits sys.path).

* Known people: :data:`TEMPLATE` (the one template person), :func:`person`, :func:`grid_people`,
  :func:`crop_to_image`, :func:`expected_people`, :func:`assert_recovered` (parsed people vs
  the skeletons their maps were rendered from) and :func:`assert_parse_recovers` (both steps).
* The stand-in network (:class:`RenderedRunner`): it returns the maps rendered
  (pipeline.parsing.render_fields) from each synthetic image's KNOWN skeletons, so a job's
  Parquet poses must equal those skeletons; each synthetic image carries its id in its top-left
  pixel (:func:`write_image`, :func:`people_for`, :func:`check_people`).
* Moving people with known identities as poses-table rows, for tracking and drawing
  (:func:`walking_person`, :func:`walker`, :func:`rows_from`, :func:`same_partition`).

* Benchmark timing: :func:`cpu_ms`.

The loop reference parser is in :mod:`pipeline.testing_reference`.
"""
from __future__ import annotations

import math
import os
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from pipeline.parsing import render_fields
from pipeline.skeleton import KEYPOINTS, LIMBS, NUM_KEYPOINTS

#: A standing person seen from the front, height 1, centred at (0, 0), y down (COCO-18 order).
TEMPLATE = np.array([
    (0.0, -0.40), (0.0, -0.30), (-0.10, -0.29), (-0.13, -0.13), (-0.14, 0.02), (0.10, -0.29),
    (0.13, -0.13), (0.14, 0.02), (-0.06, 0.02), (-0.07, 0.24), (-0.07, 0.45), (0.06, 0.02),
    (0.07, 0.24), (0.07, 0.45), (-0.025, -0.43), (0.025, -0.43), (-0.05, -0.41), (0.05, -0.41),
])
#: Half the largest extent of a (rotated) template person, in person heights.
RADIUS = float(np.hypot(TEMPLATE[:, 0], TEMPLATE[:, 1]).max())
_NECK = KEYPOINTS.index("neck")
_RIGHT_WRIST_ANKLE = [KEYPOINTS.index("r_wrist"), KEYPOINTS.index("r_ankle")]
_LEFT_WRIST_ANKLE = [KEYPOINTS.index("l_wrist"), KEYPOINTS.index("l_ankle")]


def person(cx: float, cy: float, height: float, angle: float = 0.0, jitter=None,
           visible=None) -> np.ndarray:
    """float [18, 3] (x, y, visibility) of the template person scaled to ``height`` pixels,
    rotated by ``angle`` radians about its centre (cx, cy) in pixels, plus optional jitter
    [18, 2] in person heights and a visibility mask [18] (default: every part visible, 1)."""
    xy = TEMPLATE + (0.0 if jitter is None else np.asarray(jitter))
    c, s = math.cos(angle), math.sin(angle)
    xy = xy @ np.array([[c, s], [-s, c]]) * height + (cx, cy)
    vis = np.ones(NUM_KEYPOINTS) if visible is None else np.asarray(visible, float)
    return np.concatenate([xy, vis[:, None]], axis=1)


def crop_to_image(skeletons: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """A copy of skeletons [P, 18, 3] with the parts outside the image ([0, W-1] x [0, H-1]
    pixels for image_size (W, H)) marked not visible."""
    sk = np.array(skeletons, dtype=np.float64)
    w, h = image_size
    inside = (sk[..., 0] >= 0) & (sk[..., 0] <= w - 1) & (sk[..., 1] >= 0) & (sk[..., 1] <= h - 1)
    sk[..., 2] = np.where(inside, sk[..., 2], 0.0)
    return sk


def grid_people(image_size: tuple[int, int], draws, min_height: float = 40.0,
                margin: float = 32.0) -> np.ndarray:
    """People on a grid of non-overlapping discs (gap >= margin pixels) in an image of
    image_size (W, H), one per row of draws [n, 4] = (size in 0..1, rotation in radians, dx and
    dy in -1..1 within the disc's slack) -> float [n, 18, 3] (heights >= min_height pixels)."""
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
    """[n, 4] uniform draws for :func:`grid_people`."""
    return np.stack([rng.uniform(0, 1, n), rng.uniform(-math.pi, math.pi, n),
                     rng.uniform(-1, 1, n), rng.uniform(-1, 1, n)], axis=1)


def expected_people(skeletons: np.ndarray, min_parts: int, limbs=LIMBS) -> list[np.ndarray]:
    """What a parser must find in maps rendered from skeletons [P, 18, 3]: each set of visible
    parts of one skeleton that the limbs connect, if it has at least ``min_parts`` parts
    -> list of float [18, 3] (invisible parts zeroed)."""
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


def assert_recovered(found, expected, tol_px: float, where: str = "") -> float:
    """Assert every expected person (list or array of float [18, 3], visibility > 0 = present)
    is found once, with exactly its parts, each within ``tol_px`` pixels, and nothing else is.

    found: a Poses or keypoints [P, 18, 3] (missing parts NaN). ``where`` prefixes the messages.
    Returns the worst keypoint error in pixels.
    """
    found = np.asarray(getattr(found, "keypoints", found))
    prefix = f"{where}: " if where else ""
    assert len(found) == len(expected), f"{prefix}found {len(found)} people, expected {len(expected)}"
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
        assert errs[q] <= tol_px, (f"{prefix}person with parts {np.flatnonzero(parts).tolist()} at "
                                   f"{e[parts, :2].mean(0).round(1).tolist()} not recovered "
                                   f"within {tol_px}px (best error {errs[q]:.3f}px)")
        used.add(q)
        worst = max(worst, errs[q])
    return worst


def assert_parse_recovers(skeletons: np.ndarray, image_size: tuple[int, int], config, tol_px: float,
                          min_parts: int = 4) -> float:
    """Render the maps of skeletons [P, 18, 3] in an image of image_size (W, H), parse them with
    ``config`` (a ParseConfig) and :func:`assert_recovered` the :func:`expected_people`; returns
    the worst keypoint error in pixels."""
    from pipeline.parsing import parse

    fields = render_fields(skeletons, image_size)
    return assert_recovered(parse(fields, config), expected_people(skeletons, min_parts), tol_px)


def people_for(image_id: int, size: tuple[int, int]) -> np.ndarray:
    """0-3 well separated people for synthetic image ``image_id`` of ``size`` (W, H) pixels
    -> float [P, 18, 3] (x, y, visibility)."""
    rng = np.random.default_rng(image_id)
    w, h = size
    n = image_id % 4
    out = []
    for k in range(n):
        cx = (k + 0.5) * w / n + rng.uniform(-6, 6)
        out.append(person(cx, h / 2 + rng.uniform(-8, 8), rng.uniform(0.55, 0.8) * h))
    sk = np.stack(out) if out else np.zeros((0, NUM_KEYPOINTS, 3))
    if n == 3:
        sk[1, 10, 2] = sk[1, 10, 0] = sk[1, 10, 1] = 0  # one missing r_ankle
    return sk


def write_image(path: Path, image_id: int, size: tuple[int, int] = (320, 240)) -> np.ndarray:
    """Write a lossless PNG of ``size`` (W, H) whose top-left pixel encodes ``image_id``;
    returns its skeletons float [P, 18, 3]."""
    w, h = size
    img = np.full((h, w, 3), 90, np.uint8)
    img[0, 0] = (image_id % 256, image_id // 256, 77)
    cv2.imwrite(str(path), img)
    return people_for(image_id, size)


def image_id_of(image: np.ndarray) -> int:
    """The id :func:`write_image` encoded in a decoded image (uint8 [H, W, 3] BGR)."""
    return int(image[0, 0, 0]) + 256 * int(image[0, 0, 1])


class RenderedRunner:
    """Network stand-in: images -> PoseFields rendered from their known skeletons.

    poison: image ids on which the worker process dies (os._exit), like a segfaulting kernel.
    crash_once: a file path; the first call that finds it missing creates it and kills the process.
    transient: (file path, image id): while the file does not exist, that image raises
    ConnectionResetError (a transient failure: it goes away once the test creates the file).
    Other keyword arguments (model_name, device, ...) are the job's runner settings, ignored.
    """

    def __init__(self, poison=(), crash_once: str | None = None, transient: tuple[str, int] | None = None,
                 **_runner_settings):
        self.poison, self.crash_once, self.transient = set(poison), crash_once, transient

    def __call__(self, images):
        out = []
        for img in images:
            iid = image_id_of(img)
            if iid in self.poison:
                os._exit(1)
            if self.transient and iid == self.transient[1] and not os.path.exists(self.transient[0]):
                raise ConnectionResetError(f"connection reset while labelling image {iid}")
            if self.crash_once and not os.path.exists(self.crash_once):
                Path(self.crash_once).write_text("crashed")
                os._exit(1)
            h, w = img.shape[:2]
            out.append(render_fields(people_for(iid, (w, h)), image_size=(w, h)))
        return out


def check_people(found: np.ndarray, expected: np.ndarray, where: str, tol_px: float = 1.0) -> None:
    """Assert the found keypoints [P, 18, 3] are the expected skeletons [P, 18, 3] (see
    :func:`assert_recovered`; ``where`` names the image in the messages)."""
    assert_recovered(found, list(expected), tol_px, where)


def assert_exact_tables(out, truth: dict[str, np.ndarray]) -> None:
    """Assert the job output ``out`` holds exactly one frame per image of ``truth`` ({file name:
    skeletons [P, 18, 3] it was rendered from}) with exactly its skeletons, no duplicate person,
    and passes ``posepipe verify``."""
    import pipeline
    from pipeline.job.maintenance import verify
    from pipeline.job.sink import DeltaSink

    frames = pipeline.read_frames(str(out))
    assert sorted(frames.source_uri.map(os.path.basename)) == sorted(truth), frames.source_uri.tolist()
    poses = pipeline.read_poses(str(out))
    assert not poses.duplicated(["source_uri", "frame_index", "person_index"]).any()
    for name, sk in truth.items():
        mine = poses[poses.source_uri.map(os.path.basename) == name]
        check_people(pipeline.keypoints_array(mine), sk, name)
        assert frames[frames.source_uri.map(os.path.basename) == name].num_people.item() == len(sk)
    assert verify(DeltaSink(str(out))) == []


def walking_person(neck_xy, height: float, phase: float = 0.0) -> np.ndarray:
    """float [18, 3] keypoints (x, y in pixels, score 0.8) of the template person ``height``
    pixels tall with its neck at ``neck_xy``, wrists and ankles swinging with ``phase`` radians."""
    pts = TEMPLATE - TEMPLATE[_NECK]
    swing = 0.08 * np.sin(phase)
    pts[_RIGHT_WRIST_ANKLE, 0] += swing
    pts[_LEFT_WRIST_ANKLE, 0] -= swing
    xy = np.asarray(neck_xy) + pts * height
    return np.concatenate([xy, np.full((NUM_KEYPOINTS, 1), 0.8)], axis=1)


def walker(start_xy, velocity_xy, frames, height: float = 180.0) -> dict[int, np.ndarray]:
    """frame index -> keypoints [18, 3] of a person walking at constant velocity (pixels per frame)."""
    start, vel = np.asarray(start_xy, float), np.asarray(velocity_xy, float)
    return {f: walking_person(start + vel * f, height, phase=0.6 * f) for f in frames}


def rows_from(people: dict[int, dict[int, np.ndarray]], fps: float = 10.0, seed: int = 0,
              noise_px: float = 1.5) -> pd.DataFrame:
    """people[truth_id][frame] = [18, 3] keypoints -> poses rows (frame_index, timestamp_s,
    person_index, score, keypoints [54], truth_id), with Gaussian keypoint noise of ``noise_px``
    pixels and person_index shuffled within each frame."""
    rng = np.random.default_rng(seed)
    by_frame: dict[int, list[tuple[int, np.ndarray]]] = {}
    for pid, frames in people.items():
        for f, kp in frames.items():
            by_frame.setdefault(f, []).append((pid, kp))
    rows = []
    for f in sorted(by_frame):
        entries = by_frame[f]
        for person_index, k in enumerate(rng.permutation(len(entries))):
            pid, kp = entries[k]
            kp = kp.copy()
            kp[:, :2] += rng.normal(0, noise_px, (NUM_KEYPOINTS, 2))
            rows.append({"frame_index": f, "timestamp_s": f / fps, "person_index": person_index,
                         "score": float(0.5 + 0.1 * rng.random()),
                         "keypoints": kp.astype(np.float32).ravel(), "truth_id": pid})
    return pd.DataFrame(rows)


def same_partition(truth: pd.Series, predicted: pd.Series) -> bool:
    """True when rows grouped by truth and by predicted id are the same partition."""
    pairs = pd.DataFrame({"t": truth.to_numpy(), "p": predicted.to_numpy()}).drop_duplicates()
    return pairs["t"].is_unique and pairs["p"].is_unique


def cpu_ms(fn, repeats: int) -> float:
    """Median CPU milliseconds (time.process_time of this process) of fn() over ``repeats``
    calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    return 1e3 * statistics.median(times)
