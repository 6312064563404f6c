"""Synthetic moving skeletons with known identities, as poses-table rows."""
from __future__ import annotations

import numpy as np
import pandas as pd

# A standing person, COCO-18, in units of body height (x right, y down, neck at origin).
TEMPLATE = np.array([
    [0.0, -0.12], [0.0, 0.0], [-0.12, 0.0], [-0.16, 0.18], [-0.18, 0.34], [0.12, 0.0],
    [0.16, 0.18], [0.18, 0.34], [-0.08, 0.38], [-0.09, 0.62], [-0.10, 0.86], [0.08, 0.38],
    [0.09, 0.62], [0.10, 0.86], [-0.03, -0.15], [0.03, -0.15], [-0.06, -0.13], [0.06, -0.13],
])


def skeleton(neck_xy, height, phase=0.0) -> np.ndarray:
    """[18, 3] keypoints of a walking stick figure (limbs swing with `phase`), scores 0.8."""
    pts = TEMPLATE.copy()
    swing = 0.08 * np.sin(phase)
    pts[[4, 10], 0] += swing
    pts[[7, 13], 0] -= swing
    xy = np.asarray(neck_xy) + pts * height
    return np.concatenate([xy, np.full((18, 1), 0.8)], axis=1)


def rows_from(people: dict[int, dict[int, np.ndarray]], fps: float = 10.0, seed: int = 0,
              noise_px: float = 1.5) -> pd.DataFrame:
    """people[truth_id][frame] = [18, 3] keypoints -> poses rows (+ truth_id column), with
    keypoint noise and person_index shuffled within each frame."""
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
            kp[:, :2] += rng.normal(0, noise_px, (18, 2))
            rows.append({"frame_index": f, "timestamp_s": f / fps, "person_index": person_index,
                         "score": float(0.5 + 0.1 * rng.random()),
                         "keypoints": kp.astype(np.float32).ravel(), "truth_id": pid})
    return pd.DataFrame(rows)


def walker(start_xy, velocity_xy, frames, height=180.0) -> dict[int, np.ndarray]:
    """frame -> keypoints for a person moving at constant velocity (px/frame)."""
    start, vel = np.asarray(start_xy, float), np.asarray(velocity_xy, float)
    return {f: skeleton(start + vel * f, height, phase=0.6 * f) for f in frames}


def same_partition(truth: pd.Series, predicted: pd.Series) -> bool:
    """True when rows grouped by truth and by predicted id are the same partition."""
    pairs = pd.DataFrame({"t": truth.to_numpy(), "p": predicted.to_numpy()}).drop_duplicates()
    return pairs["t"].is_unique and pairs["p"].is_unique
