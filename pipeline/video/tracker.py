"""Person tracks over ONE video's poses rows, with confirmation, re-linking and per-track scores.

Design: tracking runs once per video AFTER all of its shards are written, over all of its poses
rows sorted by (frame_index, person_index). Its result depends only on those rows, never on how
the video was split into shards or on the row order, so any shard split gives identical tracks.
Every time setting is in seconds of presentation time (``timestamp_s``), so variable frame rate and
every-k / target-fps sampling need no rescaling. The algorithm is described in docs/video.md.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

import numpy as np
import pandas as pd

from pipeline.skeleton import NUM_KEYPOINTS
from pipeline.video.smoothing import smooth_tracks

#: COCO OKS per-keypoint sigmas in COCO-18 order (the neck, absent in COCO, uses the shoulders').
OKS_SIGMAS = np.array([0.026, 0.079, 0.079, 0.072, 0.062, 0.079, 0.072, 0.062, 0.107, 0.087,
                       0.089, 0.107, 0.087, 0.089, 0.025, 0.025, 0.035, 0.035], np.float64)
#: Tracking floors every sigma at the elbows' (0.072): COCO's were fitted to annotators' spread on
#: still images, and detections of the face joints jitter far more than 0.025 person sizes from
#: frame to frame (with COCO's own, small people's faces decide almost every match).
TRACKING_SIGMAS = np.maximum(OKS_SIGMAS, 0.072)
#: Weight of the newest frame-to-frame displacement in a track's velocity (exponential smoothing).
VELOCITY_SMOOTHING = 0.5
#: Weight, in a track's similarity to a pose, of the joints carried from earlier poses (found joints: 1).
CARRIED_WEIGHT = 0.25

_CHOICES = {"similarity": ("oks", "distance"), "matcher": ("hungarian", "greedy"),
            "smoothing": ("none", "one_euro", "savgol")}
#: field -> (lowest allowed, highest allowed, whether the lowest value itself is allowed, unit).
_RANGES = {
    "min_similarity": (0.0, 1.0, False, ""), "motion_noise": (0.0, math.inf, True, "person sizes per second"),
    "max_gap_s": (0.0, math.inf, True, "seconds"), "relink_s": (0.0, math.inf, True, "seconds"),
    "min_poses": (1, math.inf, True, "poses"), "min_score": (0.0, 1.0, True, ""),
    "one_euro_min_cutoff_hz": (0.0, math.inf, False, "Hz"), "one_euro_beta": (0.0, math.inf, True, ""),
    "one_euro_d_cutoff_hz": (0.0, math.inf, False, "Hz"), "savgol_window_s": (0.0, math.inf, False, "seconds"),
    "savgol_polyorder": (0, 5, True, ""), "fill_gaps_s": (0.0, math.inf, True, "seconds"),
}


@dataclass(frozen=True)
class TrackConfig:
    """Tracking and smoothing settings; build it from a plain mapping with ``TrackConfig(**mapping)``.

    Association
      similarity:     "oks" (COCO object keypoint similarity) or "distance" (exp(-mean keypoint
                      distance / person size)); both in [0, 1].
      matcher:        "hungarian" (optimal assignment, scipy) or "greedy" (best pairs first).
      min_similarity: pairs below it never match (0 < value <= 1).
      predict_motion: compare each track at its constant-velocity prediction (px/s, smoothed over
                      its poses) instead of at its last pose; keeps people apart where paths cross.
      motion_noise:   how fast the prediction's uncertainty grows, in person sizes per second since
                      the track's last pose: it widens the similarity's tolerance in quadrature.
    Gaps (seconds)
      max_gap_s:      a track missed for up to this long (time with no pose, beyond the usual frame
                      spacing) is still matched frame by frame.
      relink_s:       after the frame-by-frame pass, a confirmed track that ends is joined to a
                      confirmed one that starts up to this long after it, where the first's motion
                      predicts the second's start (occlusions, longer misses); 0 turns it off.
    Confirmation
      min_poses:      a track needs at least this many poses ...
      min_score:      ... and a track score (mean of person score x sqrt(share of keypoints found))
                      at least this; other poses get a null track_id.
    Smoothing (extra column keypoints_smoothed; raw keypoints are never changed)
      smoothing:      "none", "one_euro" (forward-backward One-Euro filter) or "savgol"
                      (Savitzky-Golay on a uniform time grid).
      one_euro_min_cutoff_hz, one_euro_beta, one_euro_d_cutoff_hz: One-Euro parameters (cutoff in
                      Hz; beta per person size per second of speed).
      savgol_window_s, savgol_polyorder: Savitzky-Golay window (seconds) and polynomial order.
      fill_gaps_s:    missing joints of a tracked person are interpolated in keypoints_smoothed across
                      gaps up to this long (flagged by score 0 with finite x, y); 0 = no filling.
    """

    similarity: str = "oks"
    matcher: str = "hungarian"
    min_similarity: float = 0.3
    predict_motion: bool = True
    motion_noise: float = 0.5
    max_gap_s: float = 1.0
    relink_s: float = 3.0
    min_poses: int = 3
    min_score: float = 0.2
    smoothing: str = "one_euro"
    one_euro_min_cutoff_hz: float = 1.0
    one_euro_beta: float = 1.0
    one_euro_d_cutoff_hz: float = 1.0
    savgol_window_s: float = 0.5
    savgol_polyorder: int = 2
    fill_gaps_s: float = 0.5

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            where = f"TrackConfig.{f.name}"
            if f.name in _CHOICES:
                if value not in _CHOICES[f.name]:
                    raise ValueError(f"{where} must be one of {', '.join(map(repr, _CHOICES[f.name]))}, "
                                     f"got {value!r}")
            elif f.type == "bool":
                if not isinstance(value, bool):
                    raise ValueError(f"{where} must be true or false, got {value!r}")
            else:
                self._check_number(f.name, f.type, value)

    def _check_number(self, name: str, kind: str, value) -> None:
        low, high, low_ok, unit = _RANGES[name]
        whole = kind == "int"
        what = "a whole number" if whole else "a number"
        bounds = f"{'>=' if low_ok else '>'} {low}" + (f" and <= {high}" if math.isfinite(high) else "")
        wanted = f"TrackConfig.{name} must be {what} {bounds}{f' ({unit})' if unit else ''}, got {value!r}"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(wanted)
        if whole and value != int(value):
            raise ValueError(wanted)
        if not math.isfinite(value) or value > high or value < low or (value == low and not low_ok):
            raise ValueError(wanted)
        object.__setattr__(self, name, int(value) if whole else float(value))


def found(keypoints: np.ndarray) -> np.ndarray:
    """[..., 18] bool: keypoint found (finite x, y and score > 0) in keypoints [..., 18, 3]."""
    return np.isfinite(keypoints[..., :2]).all(-1) & (keypoints[..., 2] > 0)


def person_size(keypoints: np.ndarray) -> np.ndarray:
    """[N] sqrt of the bbox area (px) of each pose's found keypoints ([N, 18, 3]); at least 1."""
    ok = found(keypoints)
    xy = keypoints[..., :2]
    lo = np.where(ok[..., None], xy, np.inf).min(1)
    hi = np.where(ok[..., None], xy, -np.inf).max(1)
    wh = np.where(np.isfinite(hi - lo), hi - lo, 0.0)
    return np.sqrt(np.maximum(wh[:, 0] * wh[:, 1], 1.0))


def similarity_matrix(a: np.ndarray, b: np.ndarray, kind: str = "oks",
                      spread: np.ndarray | None = None, weights: np.ndarray | None = None) -> np.ndarray:
    """[A, B] similarity in [0, 1] between poses a [A, 18, 3] and b [B, 18, 3] (pixels).

    The weighted mean of per-keypoint similarities over the keypoints found in both poses; pairs
    with none in common get 0. The scale is the root mean square of the two poses' person sizes;
    "oks" uses TRACKING_SIGMAS. ``spread`` [A] (person sizes, default 0) is extra
    positional uncertainty of each ``a`` pose (a prediction's), added in quadrature to every
    keypoint's tolerance; ``weights`` [A, 18] (default 1) weighs a's keypoints.
    """
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    both = found(a)[:, None] & found(b)[None]                               # [A, B, 18]
    d2 = ((np.nan_to_num(a[:, None, :, :2]) - np.nan_to_num(b[None, :, :, :2])) ** 2).sum(-1)
    area = ((person_size(a)[:, None] ** 2 + person_size(b)[None] ** 2) / 2)[..., None]  # [A, B, 1]
    extra = np.zeros(len(a)) if spread is None else np.asarray(spread, np.float64)
    extra2 = (extra ** 2)[:, None, None]
    if kind == "oks":
        per_kp = np.exp(-d2 / (2 * area * ((2 * TRACKING_SIGMAS) ** 2 + extra2)))
    else:
        per_kp = np.exp(-np.sqrt(d2 / (area * (1 + extra2))))
    w = both * (1.0 if weights is None else np.asarray(weights, np.float64)[:, None, :])
    total = w.sum(-1)
    return np.where(total > 0, (per_kp * w).sum(-1) / np.where(total > 0, total, 1.0), 0.0)


def match(similarity: np.ndarray, config: TrackConfig = TrackConfig()) -> list[tuple[int, int]]:
    """One-to-one (row, column) pairs of a similarity matrix [R, C] with similarity >= min_similarity,
    by Hungarian assignment or greedily (config.matcher; pipeline.parsing.matching.match, the
    parser's matcher); sorted by row."""
    from pipeline.parsing.matching import match as match_scores

    if similarity.size == 0:
        return []
    return sorted(match_scores(similarity, config.min_similarity, config.matcher))


@dataclass
class _Track:
    """A track being built: its rows (into the sorted arrays) and its motion state."""

    rows: list[int]
    last: np.ndarray                       # [18, 3] last pose, joints it lacks carried from earlier poses
    last_t: float                          # its time, s
    seen_at: np.ndarray                    # [18] time each joint was last found, s
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))   # px/s, whole-body translation
    quality_sum: float = 0.0
    confirmed: bool = False

    @classmethod
    def start(cls, row: int, t: float, keypoints: np.ndarray, quality: float, config: TrackConfig) -> "_Track":
        """A new tentative track holding pose ``row`` at time t."""
        track = cls([], keypoints, t, np.where(found(keypoints), t, -np.inf))
        track.add(row, t, keypoints, quality, config)
        return track

    def weights(self) -> np.ndarray:
        """[18] similarity weight of each joint of ``last``: 1 if found in the last pose, else CARRIED_WEIGHT."""
        return np.where(self.seen_at == self.last_t, 1.0, CARRIED_WEIGHT)

    def predicted(self, t: float, predict: bool) -> np.ndarray:
        """[18, 3] the track's pose predicted at time t (constant velocity) or its last pose."""
        out = self.last.copy()
        if predict:
            out[:, :2] += self.velocity * (t - self.last_t)
        return out

    def add(self, row: int, t: float, keypoints: np.ndarray, quality: float, config: TrackConfig) -> None:
        """Append pose ``row`` at time t: update the velocity from the median keypoint displacement,
        and carry joints the pose lacks forward with it (for up to max(max_gap_s, relink_s))."""
        seen = found(keypoints)
        common = found(self.last) & seen
        if common.any() and t > self.last_t:
            moved = np.sort(keypoints[common, :2] - self.last[common, :2], axis=0)
            k = len(moved)
            step = (moved[(k - 1) // 2] + moved[k // 2]) / 2 / (t - self.last_t)    # median displacement
            self.velocity = step if len(self.rows) == 1 else (
                VELOCITY_SMOOTHING * step + (1 - VELOCITY_SMOOTHING) * self.velocity)
        carried = self.predicted(t, True)
        self.seen_at = np.where(seen, t, self.seen_at)
        self.last = np.where(seen[:, None], keypoints, carried)
        self.last[t - self.seen_at > max(config.max_gap_s, config.relink_s)] = (np.nan, np.nan, 0.0)
        self.last_t = t
        self.rows.append(row)
        self.quality_sum += quality
        self.confirmed = self.confirmed or bool(_evidence([self], config))


def frame_spacing(times: np.ndarray) -> float:
    """Usual time (s) between consecutive frames that have poses: the median spacing of the distinct
    times (1.0 if fewer than two)."""
    diffs = np.diff(np.unique(times))
    return float(np.median(diffs)) if len(diffs) else 1.0


def _frame_by_frame(frames: np.ndarray, times: np.ndarray, kps: np.ndarray, quality: np.ndarray,
                    config: TrackConfig, spacing: float) -> list[_Track]:
    """Online pass over the rows sorted by (frame, person): per frame, confirmed tracks are matched
    first, then tentative ones; poses left over start tentative tracks."""
    tracks: list[_Track] = []
    live: list[_Track] = []
    if len(times) == 0:
        return tracks
    bounds = np.flatnonzero(np.diff(frames)) + 1
    for rows in np.split(np.arange(len(times)), bounds):
        t = float(times[rows[0]])
        live = [tr for tr in live if t - tr.last_t <= config.max_gap_s + spacing + 1e-9]
        free = list(range(len(rows)))
        for stage in (True, False):
            group = [tr for tr in live if tr.confirmed == stage]
            if not group or not free:
                continue
            pred = np.stack([tr.predicted(t, config.predict_motion) for tr in group])
            spread = config.motion_noise * (t - np.array([tr.last_t for tr in group]))
            sim = similarity_matrix(pred, kps[rows[free]], config.similarity, spread,
                                    np.stack([tr.weights() for tr in group]))
            taken = set()
            for g, p in match(sim, config):
                group[g].add(int(rows[free[p]]), t, kps[rows[free[p]]], float(quality[rows[free[p]]]), config)
                taken.add(p)
            free = [f for k, f in enumerate(free) if k not in taken]
        for p in free:
            row = int(rows[p])
            track = _Track.start(row, t, kps[row], float(quality[row]), config)
            tracks.append(track)
            live.append(track)
    return tracks


def _evidence(tracks: list[_Track], config: TrackConfig) -> list[_Track]:
    """The tracks with enough evidence to be confirmed: >= min_poses poses and a mean quality
    (person score x sqrt(share of keypoints found)) >= min_score."""
    return [tr for tr in tracks if len(tr.rows) >= config.min_poses
            and tr.quality_sum / len(tr.rows) >= config.min_score]


def _relink(tracks: list[_Track], times: np.ndarray, kps: np.ndarray, config: TrackConfig) -> list[list[int]]:
    """Join confirmed tracks end-to-start across gaps up to relink_s (one-to-one assignment on the
    similarity between the first track's prediction and the second's first pose, widened by
    motion_noise x gap); returns the joined tracks as lists of rows."""
    if config.relink_s <= 0 or len(tracks) < 2:
        return [tr.rows for tr in tracks]
    ends = np.array([tr.last_t for tr in tracks])
    starts = np.array([times[tr.rows[0]] for tr in tracks])
    sim = np.zeros((len(tracks), len(tracks)))
    for a, tr in enumerate(tracks):
        later = np.flatnonzero((starts > ends[a]) & (starts - ends[a] <= config.relink_s))
        for b in later:
            sim[a, b] = similarity_matrix(tr.predicted(starts[b], config.predict_motion)[None],
                                          kps[tracks[b].rows[0]][None], config.similarity,
                                          [config.motion_noise * (starts[b] - ends[a])], tr.weights()[None])[0, 0]
    following = dict(match(sim, config))
    preceded = set(following.values())
    chains = []
    for head in range(len(tracks)):
        if head in preceded:
            continue
        rows, node = [], head
        while node is not None:
            rows += tracks[node].rows
            node = following.get(node)
        chains.append(rows)
    return chains


def _keypoints(poses_df: pd.DataFrame) -> np.ndarray:
    """[N, 18, 3] float64 from the ``keypoints`` column (54 floats per row); ValueError otherwise."""
    if len(poses_df) == 0:
        return np.zeros((0, NUM_KEYPOINTS, 3))
    try:
        flat = np.stack([np.asarray(k, np.float64) for k in poses_df["keypoints"]])
    except ValueError as exc:
        raise ValueError(f"poses_df.keypoints: every row must hold {NUM_KEYPOINTS * 3} floats "
                         f"(x, y, score per COCO-18 keypoint) ({exc})") from None
    if flat.shape[1:] != (NUM_KEYPOINTS * 3,):
        raise ValueError(f"poses_df.keypoints: every row must hold {NUM_KEYPOINTS * 3} floats "
                         f"(x, y, score per COCO-18 keypoint), got {flat.shape[1:]}")
    return flat.reshape(-1, NUM_KEYPOINTS, 3)


def track_video(poses_df: pd.DataFrame, config: TrackConfig | None = None
                ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Track and smooth the people of ONE video (config None: TrackConfig() defaults).

    poses_df: the video's poses-table rows for every labelled frame: frame_index, timestamp_s (s),
    person_index, score, keypoints (54 floats: x, y, score per COCO-18 keypoint, px), and any other
    columns (source_uri, bbox, ...), in any order.
    Returns (tracked, tracks):
      tracked: the same rows, index and columns, with ``track_id`` (nullable Int64: null for poses
               in no confirmed track; ids 0, 1, ... in order of first appearance) and
               ``keypoints_smoothed`` (float32 [54] per row, or None for poses in no track and when
               config.smoothing is "none"; see pipeline.video.smoothing).
      tracks:  one row per confirmed track: track_id, first/last frame and timestamp, length (poses),
               mean_score (mean person score), score (mean of person score x sqrt(share of keypoints found)),
               after source_uri / source_id when poses_df has them (schemas/tracks.v1.json).
    The result depends only on the rows, not on their order, index or the video's shard split.
    Raises ValueError naming the column when a needed column is missing or malformed, or a
    timestamp is null.
    """
    config = TrackConfig() if config is None else config
    missing = [c for c in ("frame_index", "timestamp_s", "person_index", "score", "keypoints")
               if c not in poses_df]
    if missing:
        raise ValueError(f"poses_df: missing columns {missing}; pass the video's rows of the poses table")
    n = len(poses_df)
    order = np.lexsort((poses_df["person_index"].to_numpy(), poses_df["frame_index"].to_numpy()))
    times = pd.to_numeric(poses_df["timestamp_s"], errors="coerce").to_numpy(np.float64)[order]
    if not np.isfinite(times).all():
        raise ValueError(f"poses_df.timestamp_s: {int((~np.isfinite(times)).sum())} rows have no timestamp; "
                         "tracking needs the video frames' presentation timestamps (seconds)")
    kps = _keypoints(poses_df)[order]
    observed = found(kps)
    quality = poses_df["score"].to_numpy(np.float64)[order] * np.sqrt(observed.mean(1))
    spacing = frame_spacing(times)
    tracks = _frame_by_frame(poses_df["frame_index"].to_numpy()[order], times, kps, quality, config, spacing)
    kept = _relink(_evidence(tracks, config), times, kps, config)
    kept.sort(key=min)                                   # rows are sorted, so min = first appearance
    ids = np.full(n, np.nan)
    for track_id, rows in enumerate(kept):
        ids[rows] = track_id
    smoothed = smooth_tracks(times, kps, observed, ids, person_size(kps), spacing, config)
    back = np.argsort(order)                             # sorted position of each original row
    tracked = poses_df.copy()
    tracked["track_id"] = pd.array(ids[back], dtype="Int64")
    tracked["keypoints_smoothed"] = pd.Series(
        [None if np.isnan(row).all() else row.ravel() for row in smoothed[back]], index=poses_df.index,
        dtype=object)
    return tracked, _summary(poses_df.iloc[order], ids, quality)


def _summary(sorted_df: pd.DataFrame, ids: np.ndarray, quality: np.ndarray) -> pd.DataFrame:
    """One row per confirmed track (tracks.v1 columns), sorted by track_id; ids and quality [N]
    are aligned with the rows of sorted_df."""
    keep = np.isfinite(ids)
    df = pd.DataFrame({"track_id": ids[keep].astype(np.int64),
                       "frame_index": sorted_df["frame_index"].to_numpy(np.int64)[keep],
                       "timestamp_s": pd.to_numeric(sorted_df["timestamp_s"]).to_numpy(np.float64)[keep],
                       "person_score": sorted_df["score"].to_numpy(np.float64)[keep],
                       "quality": quality[keep]})
    g = df.groupby("track_id", sort=True)
    tracks = pd.DataFrame({
        "track_id": np.asarray(list(g.groups.keys()), np.int64),
        "first_frame": g["frame_index"].first().to_numpy(np.int64),
        "last_frame": g["frame_index"].last().to_numpy(np.int64),
        "first_timestamp_s": g["timestamp_s"].first().to_numpy(np.float64),
        "last_timestamp_s": g["timestamp_s"].last().to_numpy(np.float64),
        "length": g["frame_index"].nunique().to_numpy(np.int64),
        "mean_score": g["person_score"].mean().to_numpy(np.float32),
        "score": g["quality"].mean().to_numpy(np.float32),
    })
    for column in ("source_id", "source_uri"):
        if column in sorted_df and len(sorted_df):
            tracks.insert(0, column, sorted_df[column].iloc[0])
    return tracks.reset_index(drop=True)
