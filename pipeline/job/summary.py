"""Run totals and the label-free quality summary, computed from the shard_log's per-source
aggregates (never by reading the data tables back)."""
from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa

PER_SOURCE_LIMIT = 1000  # per-source figures go into the manifest only for jobs up to this many sources


def _median_from_hist(hist: np.ndarray) -> float | None:
    n = int(hist.sum())
    if not n:
        return None
    cum = np.cumsum(hist)
    lo = int(np.searchsorted(cum, (n - 1) // 2 + 1))
    hi = int(np.searchsorted(cum, n // 2 + 1))
    return (lo + hi) / 2.0


def _figures(rows: list[dict]) -> dict[str, Any]:
    frames = sum(r["frames"] for r in rows)
    people = sum(r["people"] for r in rows)
    kp = sum(r["keypoints_found"] for r in rows)
    counts: dict[int, int] = {}
    for r in rows:
        for people_in_frame, frames_with in enumerate(json.loads(r["people_hist"])):
            counts[people_in_frame] = counts.get(people_in_frame, 0) + frames_with
    hist = np.zeros(max(counts, default=-1) + 1, np.int64)
    for k, v in counts.items():
        hist[k] = v
    return {
        "frames": frames, "people": people,
        "people_per_frame_mean": people / frames if frames else None,
        "people_per_frame_median": _median_from_hist(hist),
        "empty_frame_share": sum(r["empty_frames"] for r in rows) / frames if frames else None,
        "person_score_mean": sum(r["person_score_sum"] for r in rows) / people if people else None,
        "keypoint_score_mean": sum(r["keypoint_score_sum"] for r in rows) / kp if kp else None,
        "keypoints_per_person_mean": kp / people if people else None,
    }


def quality_from_log(log: pa.Table) -> dict[str, Any]:
    """The quality summary (same figures as pipeline.evaluation.quality_summary: frames, people,
    people per frame mean/median, share of empty frames, mean person and keypoint scores,
    keypoints per person; overall and per source up to PER_SOURCE_LIMIT sources) of the committed
    image/video shards in the shard_log ``log``."""
    columns = ["source_uri", "kind", "frames", "people", "keypoints_found", "people_hist", "empty_frames",
               "person_score_sum", "keypoint_score_sum"]
    rows = [r for r in log.select(columns).to_pylist() if r["kind"] != "tracks"]
    out = _figures(rows)
    by_source: dict[str, list[dict]] = {}
    for r in rows:
        by_source.setdefault(r["source_uri"], []).append(r)
    if len(by_source) <= PER_SOURCE_LIMIT:
        out["per_source"] = {uri: _figures(rs) for uri, rs in sorted(by_source.items())}
    return out


def totals_from_log(log: pa.Table) -> dict[str, int]:
    """{"frames", "people", "errors", "pending"} over every committed shard in ``log``."""
    import pyarrow.compute as pc

    return {k: int(pc.sum(log[k]).as_py() or 0) for k in ("frames", "people", "errors", "pending")}
