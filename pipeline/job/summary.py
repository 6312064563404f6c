"""Run totals and the label-free quality summary, computed from the shard_log's per-source
aggregates (never by reading the data tables back), as aggregate queries run by delta-rs's engine:
the driver receives sums and a people-per-frame histogram, not the log's rows."""
from __future__ import annotations

import json
from typing import Any

import numpy as np

from pipeline.job.sink import SHARD_LOG, DeltaSink

PER_SOURCE_LIMIT = 1000  # per-source figures go into the manifest only for jobs up to this many sources
_LABELLED = "kind <> 'tracks'"  # the rows of image / video shards (not tracking commits)
_SUMS = ("frames", "people", "keypoints_found", "empty_frames", "person_score_sum", "keypoint_score_sum")


def _median_from_hist(hist: np.ndarray) -> float | None:
    n = int(hist.sum())
    if not n:
        return None
    cum = np.cumsum(hist)
    lo = int(np.searchsorted(cum, (n - 1) // 2 + 1))
    hi = int(np.searchsorted(cum, n // 2 + 1))
    return (lo + hi) / 2.0


def _histogram(hists: list[str], counts: list[int]) -> np.ndarray:
    """Frames per people count, summed over JSON ``people_hist`` values each seen ``counts`` times."""
    total: dict[int, int] = {}
    for text, n in zip(hists, counts):
        for people_in_frame, frames_with in enumerate(json.loads(text)):
            total[people_in_frame] = total.get(people_in_frame, 0) + frames_with * n
    hist = np.zeros(max(total, default=-1) + 1, np.int64)
    for k, v in total.items():
        hist[k] = v
    return hist


def _figures(sums: dict[str, float], hist: np.ndarray) -> dict[str, Any]:
    frames, people, kp = (int(sums[k] or 0) for k in ("frames", "people", "keypoints_found"))
    return {
        "frames": frames, "people": people,
        "people_per_frame_mean": people / frames if frames else None,
        "people_per_frame_median": _median_from_hist(hist),
        "empty_frame_share": (sums["empty_frames"] or 0) / frames if frames else None,
        "person_score_mean": (sums["person_score_sum"] or 0) / people if people else None,
        "keypoint_score_mean": (sums["keypoint_score_sum"] or 0) / kp if kp else None,
        "keypoints_per_person_mean": kp / people if people else None,
    }


def quality_from_log(sink: DeltaSink) -> dict[str, Any]:
    """The quality summary (same figures as pipeline.evaluation.quality_summary: frames, people,
    people per frame mean/median, share of empty frames, mean person and keypoint scores,
    keypoints per person; overall and per source up to PER_SOURCE_LIMIT sources) of the committed
    image/video shards in ``sink``'s shard_log."""
    sums = sink.query(SHARD_LOG, "SELECT " + ", ".join(f"sum({c}) AS {c}" for c in _SUMS)
                      + f", count(DISTINCT source_uri) AS sources FROM t WHERE {_LABELLED}").to_pylist()[0]
    hists = sink.query(SHARD_LOG, f"SELECT people_hist, count(*) AS n FROM t WHERE {_LABELLED} GROUP BY people_hist")
    out = _figures(sums, _histogram(hists["people_hist"].to_pylist(), hists["n"].to_pylist()))
    if (sums["sources"] or 0) <= PER_SOURCE_LIMIT:
        rows = sink.query(SHARD_LOG, f"SELECT source_uri, people_hist, {', '.join(_SUMS)} FROM t WHERE {_LABELLED}")
        by_source: dict[str, list[dict]] = {}
        for r in rows.to_pylist():
            by_source.setdefault(r["source_uri"], []).append(r)
        out["per_source"] = {uri: _figures({k: sum(r[k] for r in rs) for k in _SUMS},
                                           _histogram([r["people_hist"] for r in rs], [1] * len(rs)))
                             for uri, rs in sorted(by_source.items())}
    return out


def totals_from_log(sink: DeltaSink) -> dict[str, int]:
    """{"frames", "people", "errors", "pending"} over every committed shard in ``sink``'s shard_log."""
    keys = ("frames", "people", "errors", "pending")
    row = sink.query(SHARD_LOG, "SELECT " + ", ".join(f"sum({k}) AS {k}" for k in keys) + " FROM t").to_pylist()[0]
    return {k: int(row[k] or 0) for k in keys}


def tracks_summary(sink: DeltaSink) -> dict[str, Any]:
    """{"videos_tracked", "tracks"} from the shard_log's tracking rows."""
    row = sink.query(SHARD_LOG, "SELECT count(*) AS n, sum(tracks) AS tracks FROM t "
                                "WHERE kind = 'tracks' AND status = 'done'").to_pylist()[0]
    return {"videos_tracked": int(row["n"] or 0), "tracks": int(row["tracks"] or 0)}
