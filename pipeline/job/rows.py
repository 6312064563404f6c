"""A shard's table rows: poses, frames and errors as pyarrow Tables, the shard_log rows with the
per-source aggregates, and the predicates that say which old rows the shard's commit replaces."""
from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pyarrow as pa

from pipeline import tables
from pipeline.job.records import ErrorRecord, FrameMeta, Shard
from pipeline.job.sink import quote, replace_predicate
from pipeline.skeleton import NUM_KEYPOINTS


@dataclass(frozen=True)
class RowContext:
    """What every row of a job carries: the model and configuration that made it."""

    model_id: str
    config_id: str


def errors_table(errors: Sequence[ErrorRecord]) -> pa.Table:
    """The ``errors`` rows of ``errors``."""
    cols = {k: [getattr(e, k) for e in errors] for k in
            ("input", "frame_index", "shard_id", "stage", "error_type", "retryable", "message", "attempts",
             "time_utc")}
    return tables.from_columns("errors", cols)


def _sorted_people(poses) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints [P, 18, 3] and scores [P] of ``poses`` in descending score order."""
    kp = np.asarray(poses.keypoints, np.float32).reshape(-1, NUM_KEYPOINTS, 3)
    sc = np.asarray(poses.scores, np.float32).reshape(-1)
    order = np.argsort(-sc, kind="stable")
    return kp[order], sc[order]


def shard_tables(frames: Sequence[FrameMeta], poses_list: Sequence, shard: Shard, ctx: RowContext,
                 errors: Sequence[ErrorRecord]) -> dict[str, pa.Table]:
    """{"poses", "frames", "errors"} rows of a shard; frames[i] and poses_list[i] (pipeline.poses.Poses)
    describe the same frame. People are ordered by descending score within a frame."""
    from pipeline.poses import Poses

    prow: dict[str, list] = {k: [] for k in ("source_uri", "source_id", "frame_index", "timestamp_s",
                                              "person_index", "score")}
    frow: dict[str, list] = {k: [] for k in ("source_uri", "source_id", "frame_index", "timestamp_s", "width",
                                              "height", "num_people")}
    kps, boxes = [np.zeros((0, NUM_KEYPOINTS, 3), np.float32)], [np.zeros((0, 4), np.float32)]
    for fm, poses in zip(frames, poses_list):
        kp, sc = _sorted_people(poses)
        if fm.pixel_scale != 1:  # decoded at reduced size: back to original-image pixels
            kp = kp.copy()
            kp[:, :, :2] = kp[:, :, :2] * fm.pixel_scale + (fm.pixel_scale - 1) / 2.0
        n = len(sc)
        for k in frow:
            frow[k].append(n if k == "num_people" else getattr(fm, k))
        for k in ("source_uri", "source_id", "frame_index", "timestamp_s"):
            prow[k] += [getattr(fm, k)] * n
        prow["person_index"] += list(range(n))
        prow["score"] += sc.tolist()
        kps.append(kp)
        boxes.append(Poses(kp, sc).bboxes())
    kp_all = np.concatenate(kps)
    m, nf = len(kp_all), len(frow["source_uri"])
    ids = {"model_id": ctx.model_id, "config_id": ctx.config_id, "shard_id": shard.shard_id}
    poses_t = tables.from_columns("poses", {
        **prow, **{k: [v] * m for k, v in ids.items()}, "track_id": [None] * m,
        "bbox": np.concatenate(boxes), "keypoints": kp_all.reshape(m, NUM_KEYPOINTS * 3),
        "num_keypoints": (kp_all[:, :, 2] > 0).sum(axis=1).astype(np.int32)})
    frames_t = with_pass_through(tables.from_columns("frames", {**frow, **{k: [v] * nf for k, v in ids.items()}}),
                                 [fm.extra for fm in frames])
    return {"poses": poses_t, "frames": frames_t, "errors": errors_table(errors)}


def with_pass_through(frames: pa.Table, extras: Sequence[tuple]) -> pa.Table:
    """``frames`` with one string column per pass-through column of the rows' sources (a manifest's
    other columns; named ``input_<name>`` where the name is already a frames column)."""
    names = sorted({k for extra in extras for k, _ in extra})
    for name in names:
        values = [dict(extra).get(name) for extra in extras]
        column = f"input_{name}" if name in frames.column_names else name
        frames = frames.append_column(column, pa.array(values, pa.string()))
    return frames


def shard_predicates(shard: Shard) -> dict[str, str]:
    """{table: predicate} of the old rows a commit of ``shard`` replaces: every row of its sources
    (any earlier version of them, whatever shard wrote it) -- for a video, those in its frame interval."""
    uris = [s.uri for s in shard.sources]
    covers = shard.covers if shard.kind == "video" else None
    log = replace_predicate("source_uri", uris, covers, frame_column="frame_start")
    return {"poses": replace_predicate("source_uri", uris, covers),
            "frames": replace_predicate("source_uri", uris, covers),
            "errors": replace_predicate("input", uris, covers),
            "shard_log": f"({log}) AND kind = {quote(shard.kind)}"}


def log_rows(shard: Shard, rows: dict[str, pa.Table], errors: Sequence[ErrorRecord], ctx: RowContext,
             seconds: dict[str, float]) -> pa.Table:
    """The shard_log rows of a shard (one per source) with its per-source aggregates; status
    ``pending`` for every source when any retryable error is left (the next run redoes the shard)."""
    frames = rows["frames"].select(["source_uri", "num_people"]).to_pydict()
    poses = rows["poses"].select(["source_uri", "score", "keypoints"]).to_pydict()
    pending = sum(e.retryable for e in errors)
    status = "pending" if pending else "done"
    now = _dt.datetime.now(_dt.timezone.utc)
    cols: dict[str, list[Any]] = {}
    for src in shard.sources:
        n_people = [n for u, n in zip(frames["source_uri"], frames["num_people"]) if u == src.uri]
        mine = [i for i, u in enumerate(poses["source_uri"]) if u == src.uri]
        kp_scores = np.array([poses["keypoints"][i][2::3] for i in mine], np.float64).reshape(-1, NUM_KEYPOINTS)
        found = kp_scores > 0
        hist = np.bincount(np.asarray(n_people, np.int64), minlength=1).tolist() if n_people else []
        src_errors = [e for e in errors if e.input == src.uri]
        values = {
            "shard_id": shard.shard_id, "source_uri": src.uri, "source_id": src.source_id, "kind": shard.kind,
            "frame_start": shard.frames.start if shard.frames is not None else 0, "status": status, "frames": len(n_people), "people": int(sum(n_people)), "errors": len(src_errors),
            "pending": sum(e.retryable for e in src_errors), "empty_frames": sum(n == 0 for n in n_people),
            "people_hist": json.dumps(hist), "person_score_sum": float(sum(poses["score"][i] for i in mine)),
            "keypoint_score_sum": float(kp_scores[found].sum()), "keypoints_found": int(found.sum()),
            "poses_version": -1, "model_id": ctx.model_id, "config_id": ctx.config_id,
            "seconds": json.dumps({k: round(v, 4) for k, v in seconds.items()}), "time_utc": now}
        for k, v in values.items():
            cols.setdefault(k, []).append(v)
    return tables.from_columns("shard_log", cols)
