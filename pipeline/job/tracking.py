"""Per-video tracking after all of a video's shards are finished (pipeline.video.tracking.track_video).

Re-running is safe: the video's poses files are rewritten in place (same names, atomically) with
``track_id`` filled in, its tracks file is rewritten, and a ``_tracks/<source_id>.json`` marker
says it is done.
"""
from __future__ import annotations

import json
from typing import Any, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import tables
from pipeline.job.records import ErrorRecord, Shard, Source
from pipeline.job.stages import table_path, write_errors
from pipeline.storage import filesystem, join, write_bytes_atomic, write_table_atomic


def _marker(output: str, source: Source) -> str:
    return join(output, "_tracks", f"{source.source_id}.json")


def track_source(output: str, source: Source, shard_ids: list[str],
                 storage_options: Mapping[str, Any] | None = None) -> int:
    """Track people through ``source`` (a video) from its shards' poses; returns the number of tracks."""
    from pipeline.video.tracking import track_video

    fs, _ = filesystem(output, storage_options)
    parts, paths = [], []
    for sid in shard_ids:
        path = table_path(output, "poses", sid, source.source_id)
        if fs.exists(path):
            with fs.open(path, "rb") as f:
                parts.append(pq.read_table(f, schema=tables.file_schema("poses")))
            paths.append(path)
    if parts:
        df = pa.concat_tables(parts).to_pandas()
        file_of = np.concatenate([np.full(len(p), i) for i, p in enumerate(parts)])
    else:
        df = tables.file_schema("poses").empty_table().to_pandas()
        file_of = np.zeros(0, int)
    df.insert(1, tables.PARTITION_KEY, source.source_id)
    df = df.sort_values(["frame_index", "person_index"], kind="stable")
    file_of = file_of[df.index.to_numpy()]
    df = df.reset_index(drop=True)
    track_ids, tracks_df = track_video(df.drop(columns=["track_id"]))
    df["track_id"] = np.asarray(track_ids, dtype="float64")
    for i, path in enumerate(paths):
        sub = df[file_of == i].drop(columns=[tables.PARTITION_KEY])
        tab = pa.Table.from_pandas(sub, schema=tables.file_schema("poses"), preserve_index=False)
        write_table_atomic(fs, path, tab)
    tracks = tracks_df.copy()
    tracks["source_uri"] = source.uri
    tracks[tables.PARTITION_KEY] = source.source_id
    ttab = pa.Table.from_pandas(tracks[[f.name for f in tables.schema("tracks")]], schema=tables.schema("tracks"),
                                preserve_index=False)
    write_table_atomic(fs, join(output, "tracks", f"{tables.PARTITION_KEY}={source.source_id}", "part-0.parquet"),
                       ttab.drop_columns([tables.PARTITION_KEY]))
    write_bytes_atomic(fs, _marker(output, source), json.dumps({"tracks": len(tracks), "shards": shard_ids}).encode())
    return len(tracks)


def track_videos(output: str, shards: list[Shard], status: Mapping[str, str],
                 storage_options: Mapping[str, Any] | None = None) -> int:
    """Track every video whose shards are all done and that has no tracks marker; returns errors written."""
    fs, _ = filesystem(output, storage_options)
    videos: dict[str, tuple[Source, list[str]]] = {}
    for s in shards:
        if s.kind == "video":
            videos.setdefault(s.sources[0].source_id, (s.sources[0], []))[1].append(s.shard_id)
    errors = 0
    for src, ids in videos.values():
        if not all(status.get(i) == "done" for i in ids) or fs.exists(_marker(output, src)):
            continue
        try:
            track_source(output, src, ids, storage_options)
            write_errors(fs, output, f"tracking-{src.source_id}", [])
        except Exception as exc:  # noqa: BLE001 - tracking failure leaves track_id null, job goes on
            errors += 1
            write_errors(fs, output, f"tracking-{src.source_id}", [ErrorRecord.from_exception(
                src.uri, "parse", exc, f"{src.uri}: tracking people across frames failed ({type(exc).__name__}: "
                f"{exc}); poses are written without track_id; run the job again to retry")])
    return errors
