"""Tracking one video (a Ray task, started as soon as the video's last shard is committed).

Reads the video's committed poses, links people across frames (pipeline.video.track_video) and
commits, each as one replacing commit, the video's poses with ``track_id`` filled, its tracks and
a ``tracks`` row in the shard_log that records the poses version it tracked. A video whose shard
was re-committed after its tracking (poses_version newer than the tracking's) is tracked again.
"""
from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from pipeline import tables
from pipeline.job.records import ErrorRecord, Source
from pipeline.job.rows import RowContext, errors_table
from pipeline.job.sink import SHARD_LOG, DeltaSink, quote

if TYPE_CHECKING:  # imported where a video is tracked: the planner imports this module
    import pandas as pd


def tracking_shard_id(source: Source) -> str:
    """The shard_log id of ``source``'s tracking commit."""
    return f"track-{source.source_id}"


def _video_poses(sink: DeltaSink, source: Source) -> pd.DataFrame:
    rows = sink.read("poses", filters=[("source_uri", "=", source.uri)])
    return rows.to_pandas().sort_values(["frame_index", "person_index"], kind="stable").reset_index(drop=True)


def _tracked(poses: pd.DataFrame, track_config: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(poses with track_id and any tracker columns, tracks) from pipeline.video.track_video."""
    import pandas as pd

    from pipeline.video import track_video

    result, tracks = track_video(poses.drop(columns=["track_id"]), track_config)
    if isinstance(result, pd.DataFrame):
        return result, tracks
    out = poses.copy()
    out["track_id"] = pd.array(result, dtype="Int64")
    return out, tracks


def _log_row(source: Source, ctx: RowContext, version: int, n_tracks: int, ok: bool) -> pa.Table:
    values = {"shard_id": tracking_shard_id(source), "source_uri": source.uri, "source_id": source.source_id,
              "kind": "tracks", "frame_start": 0, "status": "done" if ok else "pending", "frames": 0, "people": 0,
              "errors": 0 if ok else 1, "pending": 0 if ok else 1, "empty_frames": 0, "people_hist": "[]",
              "person_score_sum": 0.0, "keypoint_score_sum": 0.0, "keypoints_found": 0, "tracks": n_tracks,
              "poses_version": version, "model_id": ctx.model_id, "config_id": ctx.config_id,
              "seconds": "{}", "time_utc": _dt.datetime.now(_dt.timezone.utc)}
    return tables.from_columns("shard_log", {k: [v] for k, v in values.items()})


def track_source(sink: DeltaSink, source: Source, ctx: RowContext, track_config: Any = None) -> int:
    """Track ``source`` (a video) and commit the result; returns its number of tracks. A failure
    is committed as a retryable ``track`` errors row (poses keep track_id null) and re-raised."""
    meta = {"posepipe.shard_id": tracking_shard_id(source)}
    try:
        poses, tracks = _tracked(_video_poses(sink, source), track_config)
        schema = tables.schema("poses")
        for f in schema:
            if f.name not in poses.columns:
                poses[f.name] = None
        ptab = pa.Table.from_pandas(poses[schema.names], schema=schema, preserve_index=False)
        version = sink.replace("poses", ptab, f"source_uri = {quote(source.uri)}", metadata=meta)
        tracks = tracks.assign(source_uri=source.uri, source_id=source.source_id)
        tschema = tables.schema("tracks")
        for f in tschema:
            if f.name not in tracks.columns:
                tracks[f.name] = None
        ttab = pa.Table.from_pandas(tracks[tschema.names], schema=tschema, preserve_index=False)
        sink.replace("tracks", ttab, f"source_uri = {quote(source.uri)}", metadata=meta)
        sink.replace("errors", errors_table([]), f"input = {quote(source.uri)} AND stage = 'track'", metadata=meta)
        sink.replace(SHARD_LOG, _log_row(source, ctx, version, len(ttab), True),
                     f"shard_id = {quote(tracking_shard_id(source))}", metadata=meta)
        return len(ttab)
    except Exception as exc:
        err = ErrorRecord.from_exception(
            source.uri, "track", exc, f"{source.uri}: tracking people across frames failed ({type(exc).__name__}: "
            f"{exc}); poses are kept without track_id; run the job again to retry", frame_index=None)
        err.retryable = True
        sink.replace("errors", errors_table([err]), f"input = {quote(source.uri)} AND stage = 'track'", metadata=meta)
        raise


def tracking_current(rows: list[dict]) -> set[str]:
    """source_ids of the videos whose tracking commit is at least as new as every commit of their
    shards, from shard_log ``rows`` (dicts with source_id, kind, status, poses_version)."""
    newest: dict[str, int] = {}
    tracked: dict[str, int] = {}
    for r in rows:
        if r["kind"] == "video":
            newest[r["source_id"]] = max(newest.get(r["source_id"], -1), r["poses_version"])
        elif r["kind"] == "tracks" and r["status"] == "done":
            tracked[r["source_id"]] = r["poses_version"]
    return {sid for sid, version in tracked.items() if version >= newest.get(sid, 0)}


def stale_videos(sink: DeltaSink, videos: dict[str, tuple[Source, list[str]]]) -> list[Source]:
    """Videos whose planned shards are all done in ``sink``'s shard_log and whose tracking is
    missing or older than their newest shard commit. ``videos``: {uri: (source, shard ids)}."""
    rows = sink.shard_log(["shard_id", "source_id", "kind", "status", "poses_version"],
                          [("kind", "in", ["video", "tracks"])]).to_pylist()
    done = {r["shard_id"] for r in rows if r["status"] == "done" and r["kind"] != "tracks"}
    current = tracking_current(rows)
    return [src for src, ids in videos.values() if all(i in done for i in ids) and src.source_id not in current]
