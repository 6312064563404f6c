"""Person tracking over one video's poses rows: frame-to-frame matching on OKS or keypoint distance.

Design: tracking runs once per video AFTER all of its shards are written, over the poses rows
sorted by (frame_index, person_index). Its result depends only on those rows, never on how the
video was split into shards, so any shard split gives identical track ids.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from pipeline.skeleton import NUM_KEYPOINTS

#: COCO OKS per-keypoint sigmas in COCO-18 order (the neck, absent in COCO, uses the shoulders').
OKS_SIGMAS = np.array([0.026, 0.079, 0.079, 0.072, 0.062, 0.079, 0.072, 0.062, 0.107, 0.087,
                       0.089, 0.107, 0.087, 0.089, 0.025, 0.025, 0.035, 0.035], np.float64)


@dataclass(frozen=True)
class TrackConfig:
    """Tracking settings.

    similarity:     "oks" (COCO object keypoint similarity) or "distance" (exp(-mean keypoint
                    distance / person size)); both in [0, 1].
    matcher:        "hungarian" (optimal assignment) or "greedy" (best pairs first).
    min_similarity: pairs below it never match; the pose starts a new track.
    max_gap:        a track survives up to this many missing sampled frames (counted in the most
                    common spacing between frames that have poses, so every-k sampling needs no
                    rescaling).
    predict_motion: compare against each track's constant-velocity prediction (from its last two
                    poses) instead of its last pose; helps where people cross.
    """

    similarity: str = "oks"
    matcher: str = "hungarian"
    min_similarity: float = 0.3
    max_gap: int = 5
    predict_motion: bool = True

    def __post_init__(self) -> None:
        if self.similarity not in ("oks", "distance"):
            raise ValueError(f"similarity must be 'oks' or 'distance', got {self.similarity!r}")
        if self.matcher not in ("hungarian", "greedy"):
            raise ValueError(f"matcher must be 'hungarian' or 'greedy', got {self.matcher!r}")


def _area(keypoints: np.ndarray) -> np.ndarray:
    """[N] bbox area in px^2 of each pose's found keypoints ([N, 18, 3]); at least 1."""
    xy = keypoints[..., :2]
    ok = np.isfinite(xy).all(-1) & (keypoints[..., 2] > 0)
    lo = np.where(ok[..., None], xy, np.inf).min(1)
    hi = np.where(ok[..., None], xy, -np.inf).max(1)
    wh = np.where(np.isfinite(hi - lo), hi - lo, 0.0)
    return np.maximum(wh[:, 0] * wh[:, 1], 1.0)


def similarity_matrix(a: np.ndarray, b: np.ndarray, kind: str = "oks") -> np.ndarray:
    """[A, B] similarity in [0, 1] between poses a [A, 18, 3] and b [B, 18, 3] (pixels).

    Only keypoints found in both poses count; pairs with none in common get 0. The scale is the
    mean of the two poses' keypoint-bbox areas.
    """
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    ok_a = np.isfinite(a[..., :2]).all(-1) & (a[..., 2] > 0)
    ok_b = np.isfinite(b[..., :2]).all(-1) & (b[..., 2] > 0)
    both = ok_a[:, None] & ok_b[None]                                  # [A, B, 18]
    d2 = ((np.nan_to_num(a[:, None, :, :2]) - np.nan_to_num(b[None, :, :, :2])) ** 2).sum(-1)
    area = (_area(a)[:, None] + _area(b)[None]) / 2                    # [A, B]
    if kind == "oks":
        per_kp = np.exp(-d2 / (2 * area[..., None] * (2 * OKS_SIGMAS) ** 2))
    else:
        per_kp = np.exp(-np.sqrt(d2) / np.sqrt(area)[..., None])
    count = both.sum(-1)
    return np.where(count > 0, (per_kp * both).sum(-1) / np.maximum(count, 1), 0.0)


def assign_across(prev_keypoints: np.ndarray, keypoints: np.ndarray,
                  config: TrackConfig = TrackConfig()) -> list[tuple[int, int]]:
    """Match active tracks' (predicted) poses prev_keypoints [T, 18, 3] to a frame's poses
    keypoints [P, 18, 3]; returns (track row, pose row) pairs with similarity >= min_similarity."""
    sim = similarity_matrix(prev_keypoints, keypoints, config.similarity)
    if sim.size == 0:
        return []
    if config.matcher == "hungarian":
        rows, cols = linear_sum_assignment(-sim)
        pairs = sorted(zip(rows.tolist(), cols.tolist()))
    else:
        order = np.argsort(-sim, axis=None, kind="stable")
        used_t, used_p, pairs = set(), set(), []
        for flat in order.tolist():
            t, p = divmod(flat, sim.shape[1])
            if t not in used_t and p not in used_p:
                used_t.add(t), used_p.add(p), pairs.append((t, p))
        pairs.sort()
    return [(t, p) for t, p in pairs if sim[t, p] >= config.min_similarity]


@dataclass
class _Track:
    track_id: int
    last_frame: int
    last: np.ndarray                      # [18, 3]
    velocity: np.ndarray = field(default_factory=lambda: np.zeros((NUM_KEYPOINTS, 2)))

    def predicted(self, frame: int, predict: bool) -> np.ndarray:
        out = self.last.copy()
        if predict:
            out[:, :2] += self.velocity * (frame - self.last_frame)
        return out

    def update(self, frame: int, keypoints: np.ndarray) -> None:
        step = np.nan_to_num((keypoints[:, :2] - self.last[:, :2]) / max(frame - self.last_frame, 1))
        self.velocity = step
        self.last, self.last_frame = keypoints, frame


def _frame_step(frames: np.ndarray) -> int:
    """Most common spacing between consecutive distinct frame indices (1 if fewer than 2)."""
    diffs = np.diff(np.unique(frames))
    if len(diffs) == 0:
        return 1
    values, counts = np.unique(diffs, return_counts=True)
    return int(values[np.argmax(counts)])


def track_video(poses_df: pd.DataFrame, config: TrackConfig = TrackConfig()
                ) -> tuple[pd.Series, pd.DataFrame]:
    """Give every pose row of ONE video a track id and summarise the tracks.

    poses_df: rows of the poses table (frame_index, timestamp_s, person_index, score,
              keypoints = 54 floats x, y, s per COCO-18 keypoint in pixels).
    Returns (track_id: int64 Series on poses_df's index, tracks: DataFrame with the columns of
    schemas/tracks.v1.json except source_uri/source_id). Track ids are 0, 1, ... in order of
    first appearance; the result depends only on the rows (not their order or shard split).
    """
    track_ids = pd.Series(np.zeros(len(poses_df), np.int64), index=poses_df.index, name="track_id")
    if len(poses_df) == 0:
        return track_ids, _summary(poses_df, track_ids)
    order = np.lexsort((poses_df["person_index"].to_numpy(), poses_df["frame_index"].to_numpy()))
    kps = np.stack([np.asarray(k, np.float64) for k in poses_df["keypoints"]])[order].reshape(
        -1, NUM_KEYPOINTS, 3)
    frames = poses_df["frame_index"].to_numpy(np.int64)[order]
    max_span = (config.max_gap + 1) * _frame_step(frames)
    active: list[_Track] = []
    next_id = 0
    out = np.empty(len(order), np.int64)
    bounds = np.flatnonzero(np.diff(frames)) + 1
    for rows in np.split(np.arange(len(order)), bounds):
        frame = int(frames[rows[0]])
        active = [t for t in active if frame - t.last_frame <= max_span]
        prev = np.stack([t.predicted(frame, config.predict_motion) for t in active]) if active \
            else np.zeros((0, NUM_KEYPOINTS, 3))
        matched = dict((p, t) for t, p in assign_across(prev, kps[rows], config))
        for p, row in enumerate(rows):
            if p in matched:
                track = active[matched[p]]
                track.update(frame, kps[row])
            else:
                track = _Track(next_id, frame, kps[row])
                next_id += 1
                active.append(track)
            out[row] = track.track_id
    track_ids.iloc[order] = out
    return track_ids, _summary(poses_df, track_ids)


def _summary(poses_df: pd.DataFrame, track_ids: pd.Series) -> pd.DataFrame:
    """One row per track: first/last frame and timestamp, length, mean score (tracks.v1)."""
    df = pd.DataFrame({"track_id": track_ids.to_numpy(np.int64),
                       "frame_index": poses_df["frame_index"].to_numpy(np.int64),
                       "timestamp_s": poses_df["timestamp_s"].to_numpy(np.float64),
                       "score": poses_df["score"].to_numpy(np.float64)})
    df = df.sort_values(["track_id", "frame_index"], kind="stable")
    g = df.groupby("track_id", sort=True)
    tracks = pd.DataFrame({
        "track_id": np.asarray(list(g.groups.keys()), np.int64),
        "first_frame": g["frame_index"].first().to_numpy(np.int64),
        "last_frame": g["frame_index"].last().to_numpy(np.int64),
        "first_timestamp_s": g["timestamp_s"].first().to_numpy(np.float64),
        "last_timestamp_s": g["timestamp_s"].last().to_numpy(np.float64),
        "length": g["frame_index"].nunique().to_numpy(np.int64),
        "mean_score": g["score"].mean().to_numpy(np.float32),
    })
    return tracks.reset_index(drop=True)
