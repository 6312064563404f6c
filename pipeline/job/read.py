"""Read the job's tables back as pandas DataFrames (pyarrow.dataset; filters pushed down to Parquet)."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from pyarrow.fs import FSSpecHandler, PyFileSystem

from pipeline import tables
from pipeline.skeleton import NUM_KEYPOINTS
from pipeline.storage import absolute_uri, filesystem, join


def _dataset(uri: str, table: str, storage_options: Mapping[str, Any] | None) -> ds.Dataset | None:
    fs, path = filesystem(absolute_uri(uri), storage_options)
    folder = join(path, table)
    if not fs.exists(folder):
        return None
    partitioning = None
    if table in tables.PARTITIONED:
        partitioning = ds.partitioning(pa.schema([(tables.PARTITION_KEY, pa.string())]), flavor="hive")
    return ds.dataset(folder, filesystem=PyFileSystem(FSSpecHandler(fs)), format="parquet",
                      partitioning=partitioning, schema=tables.schema(table))


def read_table(uri: str, table: str, filters: Any = None, columns: Sequence[str] | None = None,
               storage_options: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Rows of ``table`` ("poses", "frames", "errors", "tracks") under the job output ``uri``.

    filters: a pyarrow.compute Expression or DNF tuples like [("source_id", "=", "ab12...")]
    (pushed down: partitions and row groups that cannot match are not read).
    columns: the columns to read (default all). An output with no rows gives an empty frame
    with the table's columns.
    """
    dset = _dataset(uri, table, storage_options)
    expr = pq.filters_to_expression(filters) if isinstance(filters, (list, tuple)) else filters
    if dset is None:
        empty = tables.schema(table).empty_table()
        return (empty.select(list(columns)) if columns else empty).to_pandas()
    return dset.to_table(columns=list(columns) if columns else None, filter=expr).to_pandas()


def read_poses(uri: str, filters: Any = None, columns: Sequence[str] | None = None,
               storage_options: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """The ``poses`` table (one row per person per frame); see :func:`read_table` and :func:`keypoints_array`."""
    return read_table(uri, "poses", filters, columns, storage_options)


def read_frames(uri: str, filters: Any = None, columns: Sequence[str] | None = None,
                storage_options: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """The ``frames`` table (one row per processed frame); see :func:`read_table`."""
    return read_table(uri, "frames", filters, columns, storage_options)


def read_errors(uri: str, filters: Any = None, columns: Sequence[str] | None = None,
                storage_options: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """The ``errors`` table (one row per input or shard that failed); see :func:`read_table`."""
    return read_table(uri, "errors", filters, columns, storage_options)


def read_tracks(uri: str, filters: Any = None, columns: Sequence[str] | None = None,
                storage_options: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """The ``tracks`` table (one row per person track in a video); see :func:`read_table`."""
    return read_table(uri, "tracks", filters, columns, storage_options)


def keypoints_array(df: pd.DataFrame) -> np.ndarray:
    """float32 [P, 18, 3] (x, y, score in pixels; NaN x/y for missing) from a poses frame's ``keypoints``."""
    if len(df) == 0:
        return np.zeros((0, NUM_KEYPOINTS, 3), np.float32)
    return np.stack(df["keypoints"].to_numpy()).astype(np.float32).reshape(-1, NUM_KEYPOINTS, 3)
