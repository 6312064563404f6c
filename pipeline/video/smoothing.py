"""Offline smoothing of each track's keypoints over time: forward-backward One-Euro or Savitzky-Golay.

Raw keypoints are never changed; the result is an extra column (``keypoints_smoothed``). Each joint
of a track is smoothed over its *segments*: runs of observations whose gaps (time with no
observation of the joint beyond the usual frame spacing) are at most ``fill_gaps_s``. Inside a
segment, samples where the joint was not found are linearly interpolated in time (flagged: score 0
with finite x, y); outside segments the joint stays missing (x = y = NaN, score 0).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from pipeline.video.tracker import TrackConfig


def _alpha(cutoff_hz: np.ndarray | float, dt: float) -> np.ndarray | float:
    """Exponential smoothing factor of a first-order low-pass at ``cutoff_hz`` for a step of dt seconds."""
    tau = 1.0 / (2 * np.pi * cutoff_hz)
    return 1.0 / (1.0 + tau / dt)


def one_euro(times: np.ndarray, values: np.ndarray, starts: np.ndarray, size: float,
             min_cutoff_hz: float, beta: float, d_cutoff_hz: float) -> np.ndarray:
    """Causal One-Euro filter (Casiez et al., CHI 2012) of J joints' positions over one track.

    times [n] s, strictly increasing; values [n, J, 2] px (NaN where a joint has no value);
    starts [n, J] bool: the filter restarts there (first sample of each segment). The cutoff is
    min_cutoff_hz + beta * speed, with the filtered speed in person sizes (``size`` px) per second.
    Returns [n, J, 2] px, NaN where values is NaN.
    """
    out = np.full_like(values, np.nan)
    if len(times) == 0:
        return out
    x_hat = values[0].copy()
    dx_hat = np.zeros_like(x_hat)
    out[0] = x_hat
    for i in range(1, len(times)):
        dt = times[i] - times[i - 1]
        dx_hat = dx_hat + _alpha(d_cutoff_hz, dt) * ((values[i] - x_hat) / dt - dx_hat)
        cutoff = min_cutoff_hz + beta * np.linalg.norm(dx_hat, axis=-1) / size
        x_hat = x_hat + _alpha(cutoff, dt)[:, None] * (values[i] - x_hat)
        restart = starts[i]
        x_hat[restart], dx_hat[restart] = values[i][restart], 0.0
        out[i] = x_hat
    out[np.isnan(values)] = np.nan
    return out


def one_euro_both_ways(times: np.ndarray, values: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                       size: float, min_cutoff_hz: float, beta: float, d_cutoff_hz: float) -> np.ndarray:
    """Offline One-Euro: mean of a forward and a backward pass ([n, J, 2] px), which cancels the
    causal filter's lag on steady motion. ends [n, J] marks each segment's last sample."""
    forward = one_euro(times, values, starts, size, min_cutoff_hz, beta, d_cutoff_hz)
    backward = one_euro(-times[::-1], values[::-1], ends[::-1], size, min_cutoff_hz, beta, d_cutoff_hz)[::-1]
    return (forward + backward) / 2


def savgol_on_grid(times: np.ndarray, values: np.ndarray, spacing: float, window_s: float,
                   polyorder: int) -> np.ndarray:
    """Savitzky-Golay smoothing (scipy.signal.savgol_filter) of one joint's segment.

    times [m] s (increasing, any spacing), values [m, 2] px without gaps. The segment is resampled
    linearly onto a uniform grid of about ``spacing`` seconds, filtered with a window of
    ``window_s`` (rounded to an odd number of grid samples, at most the grid length) and sampled
    back at ``times``. Too short a window (<= polyorder samples) returns the values unchanged.
    """
    count = int(round((times[-1] - times[0]) / spacing)) + 1 if len(times) > 1 else 1
    window = min(int(round(window_s / spacing)) // 2 * 2 + 1, count if count % 2 else count - 1)
    if window <= polyorder:
        return values.copy()
    grid = np.linspace(times[0], times[-1], count)
    on_grid = np.stack([np.interp(grid, times, values[:, c]) for c in range(2)], axis=1)
    from scipy.signal import savgol_filter  # here: importing scipy.signal costs 2 s, and most jobs never smooth

    filtered = savgol_filter(on_grid, window, polyorder, axis=0, mode="interp")
    return np.stack([np.interp(times, grid, filtered[:, c]) for c in range(2)], axis=1)


def segments(times: np.ndarray, observed: np.ndarray, spacing: float, fill_gaps_s: float) -> np.ndarray:
    """[n] segment label of each sample of one joint (-1: outside every segment).

    times [n] s increasing; observed [n] bool. Consecutive observations whose gap (time between
    them minus ``spacing``) is at most fill_gaps_s are in one segment, with the samples between them.
    """
    label = np.full(len(times), -1)
    seen = np.flatnonzero(observed)
    if len(seen) == 0:
        return label
    breaks = np.diff(times[seen]) - spacing > fill_gaps_s + 1e-9
    first = np.concatenate([[0], np.flatnonzero(breaks) + 1])
    last = np.concatenate([first[1:] - 1, [len(seen) - 1]])
    for k, (a, b) in enumerate(zip(seen[first], seen[last])):
        label[a:b + 1] = k
    return label


def smooth_track(times: np.ndarray, keypoints: np.ndarray, observed: np.ndarray, size: float,
                 spacing: float, config: "TrackConfig") -> np.ndarray:
    """Smoothed keypoints [n, 18, 3] (float64) of ONE track.

    times [n] s strictly increasing; keypoints [n, 18, 3] (x, y px, score); observed [n, 18] bool
    (joint found); size: the person's size in px (One-Euro speeds are per size); spacing: the
    video's usual frame spacing in s. Found joints keep their score; interpolated ones get score 0
    with finite x, y; joints outside every segment are x = y = NaN, score 0.
    """
    n, joints = observed.shape
    labels = np.stack([segments(times, observed[:, j], spacing, config.fill_gaps_s) for j in range(joints)], 1)
    inside = labels >= 0
    values = np.full((n, joints, 2), np.nan)
    for j in range(joints):
        seen = observed[:, j]
        if seen.any():
            for c in range(2):
                values[inside[:, j], j, c] = np.interp(times[inside[:, j]], times[seen], keypoints[seen, j, c])
    if config.smoothing == "one_euro":
        previous = np.vstack([np.full((1, joints), -2), labels[:-1]])
        following = np.vstack([labels[1:], np.full((1, joints), -2)])
        smoothed = one_euro_both_ways(times, values, inside & (labels != previous), inside & (labels != following),
                                      size, config.one_euro_min_cutoff_hz, config.one_euro_beta,
                                      config.one_euro_d_cutoff_hz)
    else:
        smoothed = values.copy()
        for j in range(joints):
            for k in np.unique(labels[inside[:, j], j]):
                rows = labels[:, j] == k
                smoothed[rows, j] = savgol_on_grid(times[rows], values[rows, j], spacing,
                                                   config.savgol_window_s, config.savgol_polyorder)
    score = np.where(observed, keypoints[..., 2], 0.0)
    return np.concatenate([smoothed, score[..., None]], axis=2)


def smooth_tracks(times: np.ndarray, keypoints: np.ndarray, observed: np.ndarray, ids: np.ndarray,
                  sizes: np.ndarray, spacing: float, config: "TrackConfig") -> np.ndarray:
    """Smoothed keypoints [N, 18, 3] float32 of every row of one video (NaN rows: in no track, or
    config.smoothing == "none").

    times [N] s; keypoints [N, 18, 3]; observed [N, 18] bool; ids [N] track ids (NaN = no track);
    sizes [N] person size of each pose in px (a track uses its median); spacing in s.
    """
    out = np.full(keypoints.shape, np.nan, np.float32)
    if config.smoothing == "none":
        return out
    for track_id in np.unique(ids[np.isfinite(ids)]):
        rows = np.flatnonzero(ids == track_id)
        rows = rows[np.argsort(times[rows], kind="stable")]
        out[rows] = smooth_track(times[rows], keypoints[rows], observed[rows], float(np.median(sizes[rows])),
                                 spacing, config)
    return out
