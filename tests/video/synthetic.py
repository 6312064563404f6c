"""Synthetic tracking scenes with known identities, as poses-table rows.

The plain walkers (walker, rows_from, same_partition, skeleton) live in pipeline.testing and are
re-exported here. :func:`observe` turns noiseless people into what a detector reports: keypoint
noise, joints hidden outside the frame, behind static occluders and behind nearer people, missed
joints and poses, plus false detections (clutter, a lamp post). The scenes below are the ones the
tracking metrics are measured on (docs/video.md).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.skeleton import NUM_KEYPOINTS
from pipeline.testing import rows_from, same_partition, walker
from pipeline.testing import walking_person as skeleton

__all__ = ["CLUTTER", "FRAME_SIZE", "PILLAR", "Scene", "crossing_scene", "observe", "occluder_scene", "reentry_scene",
           "rows_from", "same_partition", "skeleton", "street_scene", "walker"]

FRAME_SIZE = (1280, 720)
CLUTTER = -1  # truth_id of false detections


@dataclass
class Scene:
    """rows: poses rows (frame_index, timestamp_s, person_index, score, keypoints [54], truth_id;
    CLUTTER for false detections); truth[(truth_id, frame_index)]: the noiseless [18, 3] pose."""

    rows: pd.DataFrame
    truth: dict[tuple[int, int], np.ndarray]


def _hidden(kp: np.ndarray, boxes: list[tuple[float, float, float, float]]) -> np.ndarray:
    """[18] bool: joints of kp [18, 3] inside any box (x0, y0, x1, y1)."""
    x, y = kp[:, 0], kp[:, 1]
    out = np.zeros(NUM_KEYPOINTS, bool)
    for x0, y0, x1, y1 in boxes:
        out |= (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)
    return out


def _body_box(kp: np.ndarray) -> tuple[float, float, float, float]:
    """Box covering a person's body: its keypoints' box widened by a tenth of its height each side."""
    lo, hi = kp[:, :2].min(0), kp[:, :2].max(0)
    pad = 0.1 * (hi[1] - lo[1])
    return lo[0] - pad, lo[1] - pad, hi[0] + pad, hi[1] + pad


def observe(people: dict[int, dict[int, np.ndarray]], fps: float = 25.0, seed: int = 0, noise_px: float = 2.0,
            joint_miss: float = 0.05, pose_miss: float = 0.03, occluders=(), clutter_per_frame: float = 0.0,
            lamp_post: tuple[float, float] | None = None, frame_times=None) -> Scene:
    """What a detector reports for noiseless people[truth_id][frame] = [18, 3] keypoints.

    A joint is lost when it is outside FRAME_SIZE, inside a static occluder box (x0, y0, x1, y1)
    or inside the body box of a nearer person (feet lower in the frame), or at random
    (joint_miss); a pose with fewer than 5 joints left, or at random (pose_miss), is not reported.
    Person scores are 0.35 + 0.25 x visible share (+-0.05). Clutter: Poisson(clutter_per_frame)
    poses of 3-6 random joints, score 0.05-0.25; lamp_post (x, y): a 6-joint vertical stick seen in
    70% of frames, score 0.15. frame_times: optional {frame: timestamp_s} (else frame / fps).
    """
    rng = np.random.default_rng(seed)
    w, h = FRAME_SIZE
    frames = sorted({f for track in people.values() for f in track})
    rows, truth = [], {}
    for f in frames:
        present = sorted((pid for pid in people if f in people[pid]), key=lambda p: -people[p][f][:, 1].max())
        found = []
        for rank, pid in enumerate(present):
            kp = people[pid][f]
            truth[(pid, f)] = kp
            lost = (kp[:, 0] < 0) | (kp[:, 0] >= w) | (kp[:, 1] < 0) | (kp[:, 1] >= h)
            lost |= _hidden(kp, list(occluders) + [_body_box(people[q][f]) for q in present[:rank]])
            lost |= rng.random(NUM_KEYPOINTS) < joint_miss
            if (~lost).sum() < 5 or rng.random() < pose_miss:
                continue
            seen = kp.copy()
            seen[:, :2] += rng.normal(0, noise_px, (NUM_KEYPOINTS, 2))
            seen[lost] = (np.nan, np.nan, 0.0)
            found.append((pid, seen, 0.35 + 0.25 * (~lost).mean() + rng.uniform(-0.05, 0.05)))
        for _ in range(rng.poisson(clutter_per_frame)):
            kp = skeleton(rng.uniform((50, 50), (w - 50, h - 200)), rng.uniform(60, 200), rng.uniform(0, 6))
            keep = rng.permutation(NUM_KEYPOINTS)[:rng.integers(3, 7)]
            kp[np.setdiff1d(np.arange(NUM_KEYPOINTS), keep)] = (np.nan, np.nan, 0.0)
            found.append((CLUTTER, kp, rng.uniform(0.05, 0.25)))
        if lamp_post is not None and rng.random() < 0.7:
            kp = np.full((NUM_KEYPOINTS, 3), (np.nan, np.nan, 0.0))
            kp[:6] = [(lamp_post[0] + rng.normal(0, 1), lamp_post[1] + 25 * k + rng.normal(0, 1), 0.3)
                      for k in range(6)]
            found.append((CLUTTER, kp, 0.15))
        found.sort(key=lambda item: -item[2])
        t = frame_times[f] if frame_times is not None else f / fps
        for person_index, (pid, kp, score) in enumerate(found):
            rows.append({"frame_index": f, "timestamp_s": float(t), "person_index": person_index,
                         "score": float(score), "keypoints": kp.astype(np.float32).ravel(), "truth_id": pid})
    return Scene(pd.DataFrame(rows), truth)


def _path(segments, height: float, phase_per_frame: float = 0.35) -> dict[int, np.ndarray]:
    """frame -> [18, 3] of a person walking a piecewise-linear path: segments of
    (first frame, last frame, neck xy at first frame, velocity px/frame)."""
    out = {}
    for first, last, start, velocity in segments:
        for f in range(first, last + 1):
            neck = np.asarray(start, float) + np.asarray(velocity, float) * (f - first)
            out[f] = skeleton(neck, height, phase=phase_per_frame * f)
    return out


def crossing_scene(seed: int = 0, frames: int = 200, step: int = 1, fps: float = 25.0, vfr: bool = False,
                   clutter: bool = True) -> Scene:
    """8 s at 25 fps, 5 people: two walk towards each other and cross (the farther one hidden behind
    the nearer), one walks diagonally through them, one stands in the middle while the others pass
    in front of and behind them, one enters from the right; plus clutter and a lamp post.
    step: keep every step-th frame; vfr: jitter each frame's timestamp by up to +-40% of a frame."""
    keep = range(0, frames, step)
    people = {
        0: _path([(0, frames - 1, (100, 380), (5, 0))], 200),
        1: _path([(0, frames - 1, (1180, 350), (-6, 0))], 185),
        2: _path([(0, frames - 1, (300, 200), (4, 1.0))], 150),
        3: _path([(0, frames - 1, (640, 330), (0.05, 0))], 170, phase_per_frame=0.0),
        4: _path([(40, frames - 1, (1330, 250), (-4, 0))], 140),
    }
    people = {pid: {f: kp for f, kp in track.items() if f in keep} for pid, track in people.items()}
    rng = np.random.default_rng(seed + 1000)
    times = {f: (f + (rng.uniform(-0.4, 0.4) if vfr and f else 0.0)) / fps for f in keep}
    return observe(people, fps, seed, clutter_per_frame=0.3 if clutter else 0.0,
                   lamp_post=(1000, 120) if clutter else None, frame_times=times)


#: The pillar of :func:`occluder_scene`: x0, y0, x1, y1 in px.
PILLAR = (540.0, 0.0, 740.0, 720.0)


def occluder_scene(seed: int = 0, fps: float = 25.0) -> Scene:
    """8 s at 25 fps: two people walk past a pillar, each hidden behind it for 1.2-1.5 s, while a
    third walks the other way in front of them."""
    people = {
        0: _path([(0, 199, (150, 380), (5, 0))], 190),
        1: _path([(0, 199, (1150, 300), (-4.5, 0))], 160),
        2: _path([(20, 199, (1200, 470), (-5.5, 0))], 220),
    }
    return observe(people, fps, seed, occluders=[PILLAR], clutter_per_frame=0.2)


def reentry_scene(seed: int = 0, fps: float = 25.0) -> Scene:
    """8 s at 25 fps: person 0 walks out of the frame on the right, turns round off screen and
    comes back 2 s later (same identity); person 1 crosses the frame meanwhile."""
    people = {
        0: _path([(0, 79, (900, 380), (6, 0)), (80, 199, (1480, 380), (-5, 0))], 190),
        1: _path([(0, 199, (100, 300), (4.5, 0))], 160),
    }
    return observe(people, fps, seed, clutter_per_frame=0.2)


def street_scene(seed: int = 0, people: int = 24, frames: int = 205, fps: float = 50.0) -> Scene:
    """A crowded street like the issue's (205 frames, 4.1 s at 50 fps, 5-12 people in view): people
    enter at the left or right edge at random times and walk across at 40-140 px/s on lanes at
    different depths (farther = higher in the frame and smaller), hiding each other where they
    pass; some start already in view. Plus clutter and a lamp post."""
    rng = np.random.default_rng(seed)
    w, _ = FRAME_SIZE
    walkers = {}
    for pid in range(people):
        neck_y = rng.uniform(200, 420)
        height = 60 + 0.45 * (neck_y - 150)               # perspective: nearer people are lower and taller
        speed = rng.uniform(40, 140) / fps * rng.choice([-1, 1])
        first = int(rng.integers(-frames, frames - 20))   # first frame in view (negative: already in view)
        x0 = (-40 if speed > 0 else w + 40) + speed * min(first, 0)
        span = range(max(first, 0), frames)
        walkers[pid] = _path([(span.start, frames - 1, (x0 + speed * (span.start - max(first, 0)), neck_y),
                               (speed, 0.0))], height)
        walkers[pid] = {f: kp for f, kp in walkers[pid].items() if -60 < kp[1, 0] < w + 60}
    walkers = {pid: track for pid, track in walkers.items() if track}
    return observe(walkers, fps, seed, clutter_per_frame=0.5, lamp_post=(900, 150))
