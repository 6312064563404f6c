"""Read the job's tables back as pandas DataFrames, from the committed Delta snapshot.

Filters and columns are pushed down: data files whose min/max statistics cannot match the filter
are not opened, nor row groups inside the others. The same tables are plain Delta Lake tables:
``duckdb.sql("select * from delta_scan('out/x/poses')")`` or ``polars.read_delta('out/x/poses')``.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from pipeline import tables
from pipeline.skeleton import NUM_KEYPOINTS
from pipeline.storage import absolute_uri


def read_table(uri: str, table: str, filters: Any = None, columns: Sequence[str] | None = None,
               storage_options: Mapping[str, Any] | None = None, version: int | None = None) -> pd.DataFrame:
    """Rows of ``table`` ("poses", "frames", "errors", "tracks") of the job output ``uri``.

    filters: a pyarrow.compute Expression or DNF tuples like [("source_uri", "=", "s3://b/v.mp4")].
    columns: the columns to read (default all). version: an older snapshot (Delta time travel).
    An output with no rows (or no output yet) gives an empty frame with the table's columns.
    """
    from pipeline.job.sink import DeltaSink

    sink = DeltaSink(absolute_uri(uri), storage_options)
    expr = pq.filters_to_expression(filters) if isinstance(filters, (list, tuple)) else filters
    dt = sink.table(table)
    if dt is None:
        empty = tables.schema(table).empty_table()
        return (empty.select(list(columns)) if columns else empty).to_pandas()
    if version is not None:
        dt.load_as_version(version)
    data = dt.to_pyarrow_dataset().to_table(columns=list(columns) if columns else None, filter=expr)
    return tables.from_delta(table, data).to_pandas()


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
    """The ``errors`` table (one row per input or part of a video that failed); see :func:`read_table`."""
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
