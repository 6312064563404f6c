"""Keeping an output healthy: compaction (clustered by source), vacuum with a safe retention, and
verification of every committed file against the transaction logs."""
from __future__ import annotations

from typing import Any

from pipeline import tables
from pipeline.job.sink import DeltaSink

#: Replaced files are kept this long after a compaction or re-run, for readers of older snapshots
#: (Delta's own default, also the table property delta.deletedFileRetentionDuration).
RETENTION_HOURS = 7 * 24


def compact(sink: DeltaSink, target_size: int = 256 * 2 ** 20) -> dict[str, Any]:
    """Rewrite each table's small files into files of about ``target_size`` bytes, clustered by
    source (Z-order on source_uri, frame_index), so one source's rows are in one or a few files.
    Returns {table: files added/removed}."""
    out = {}
    for name in tables.TABLES + tables.INTERNAL:
        table = sink.table(name)
        if table is None:
            continue
        column = "input" if name == "errors" else "source_uri"
        order = [column, "frame_index"] if "frame_index" in tables.schema(name).names else [column]
        metrics = table.optimize.z_order(order, target_size=target_size)
        out[name] = {"files_added": metrics.get("numFilesAdded"), "files_removed": metrics.get("numFilesRemoved")}
    return out


def vacuum(sink: DeltaSink, retention_hours: int = RETENTION_HOURS, dry_run: bool = False) -> dict[str, int]:
    """Delete files no snapshot younger than ``retention_hours`` needs (never below the table's
    retention: readers of recent snapshots keep working). Returns {table: files deleted}."""
    out = {}
    for name in tables.TABLES + tables.INTERNAL:
        table = sink.table(name)
        if table is not None:
            out[name] = len(table.vacuum(retention_hours=retention_hours, dry_run=dry_run))
    return out


def verify(sink: DeltaSink, repair: bool = False) -> list[str]:
    """Problems found in the output (empty = healthy): every file the logs reference must exist
    with the row count the log records, and the shard_log's counts must match the tables.

    repair: drop missing files from the logs and the shard_log rows of the shards that wrote them
    (found from the files' min/max shard_id statistics), so the next run of the job redoes those
    shards and the counts agree again.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from pipeline.job.sink import SHARD_LOG, quote
    from pipeline.storage import filesystem

    problems: list[str] = []
    lost_shards: set[str] = set()
    counted: dict[str, int] = {}
    fs, _ = filesystem(sink.output, sink.storage_options)
    for name in tables.TABLES:
        table = sink.table(name)
        if table is None:
            problems.append(f"{sink.uri(name)}: the table is missing (not a posepipe output, or never run)")
            continue
        actions = pa.table(table.get_add_actions(flatten=True)).to_pydict()
        counted[name] = 0
        for i, path in enumerate(actions["path"]):
            full = f"{sink.uri(name).rstrip('/')}/{path}"
            _, local = filesystem(full, sink.storage_options)
            if not fs.exists(local):
                none = [None] * len(actions["path"])
                lo, hi = actions.get("min.shard_id", none)[i], actions.get("max.shard_id", none)[i]
                shard = lo if lo == hi else f"{lo}..{hi}"
                if lo and hi:
                    lost_shards.add((lo, hi))
                problems.append(f"{full}: committed in the log but missing (shard {shard}); run "
                                "`posepipe verify --repair` and then the job again to redo that shard")
                continue
            with fs.open(local, "rb") as f:
                actual = pq.ParquetFile(f).metadata.num_rows
            if actions["num_records"][i] is not None and actual != actions["num_records"][i]:
                problems.append(f"{full}: {actual} rows, the log says {actions['num_records'][i]}")
            counted[name] += actual
    if repair and problems:
        for name in tables.TABLES:
            if sink.table(name) is not None:
                sink.table(name).repair(dry_run=False)
        for lo, hi in lost_shards:  # a compacted file holds a range of shards: all are redone
            sink.delete(SHARD_LOG, f"shard_id >= {quote(lo)} AND shard_id <= {quote(hi)}")
    elif not problems:
        log = sink.shard_log(["kind", "frames", "people"])
        data = log.filter(pc.not_equal(log["kind"], "tracks"))
        for name, column in (("frames", "frames"), ("poses", "people")):
            expect = int(pc.sum(data[column]).as_py() or 0)
            if counted.get(name) != expect:
                problems.append(f"{sink.uri(name)}: {counted.get(name)} rows, the shard log records {expect}")
    return problems
