"""Read the job's tables back as pandas DataFrames, from the committed Delta snapshot.

Filters and columns are pushed down: data files whose min/max statistics cannot match the filter
are not opened, nor row groups inside the others. Filters given as DNF tuples run as a SQL query on
delta-rs's own engine (deltalake.QueryBuilder, DataFusion: the snapshot is never turned into a
Python-side dataset of every file); a pyarrow Expression goes through the pyarrow dataset of the
snapshot. The same tables are plain Delta Lake tables:
``duckdb.sql("select * from delta_scan('out/x/poses')")`` or ``polars.read_delta('out/x/poses')``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline import tables
from pipeline.skeleton import NUM_KEYPOINTS
from pipeline.storage import absolute_uri

if TYPE_CHECKING:  # pandas is imported by pyarrow's to_pandas when a table is read, not by importing this
    import pandas as pd


def read_table(uri: str, table: str, filters: Any = None, columns: Sequence[str] | None = None,
               storage_options: Mapping[str, Any] | None = None, version: int | None = None) -> pd.DataFrame:
    """Rows of ``table`` ("poses", "frames", "errors", "tracks") of the job output ``uri``.

    filters: a pyarrow.compute Expression or DNF tuples like [("source_uri", "=", "s3://b/v.mp4")].
    columns: the columns to read (default all). version: an older snapshot (Delta time travel).
    An output with no rows (or no output yet) gives an empty frame with the table's columns.
    """
    from pipeline.job.sink import DeltaSink

    sink = DeltaSink(absolute_uri(uri), storage_options)
    dt = sink.table(table)
    if dt is None:
        empty = tables.schema(table).empty_table()
        return (empty.select(list(columns)) if columns else empty).to_pandas()
    if version is not None:
        dt.load_as_version(version)
    return tables.from_delta(table, scan(dt, columns, filters)).to_pandas()


def scan(dt, columns: Sequence[str] | None = None, filters: Any = None) -> pa.Table:
    """Rows of the deltalake.DeltaTable snapshot ``dt`` as pyarrow (Delta's own types): ``columns``
    (None: all) of the rows matching ``filters`` (DNF tuples, or a pyarrow.compute Expression)."""
    where = sql_where(filters) if not isinstance(filters, pc.Expression) else None
    if where is not None:
        select = ", ".join(_ident(c) for c in columns) if columns else "*"
        return query(dt, f"SELECT {select} FROM t{where}")
    expr = pq.filters_to_expression(filters) if isinstance(filters, (list, tuple)) else filters
    return dt.to_pyarrow_dataset().to_table(columns=list(columns) if columns else None, filter=expr)


def query(dt, sql: str) -> pa.Table:
    """The result of DataFusion SQL ``sql`` over the deltalake.DeltaTable snapshot ``dt``, registered
    as ``t`` (deltalake.QueryBuilder: file statistics skip files), as one pyarrow Table. List
    columns are copied into new buffers: DataFusion hands a list column of only nulls over with a
    zero-length child buffer at a dangling address, on which pyarrow 26's cast to the tables'
    fixed-size lists crashes; the copy has a real one."""
    from deltalake import QueryBuilder

    data = pa.RecordBatchReader.from_stream(QueryBuilder().register("t", dt).execute(sql)).read_all()
    for i, field in enumerate(data.schema):
        if pa.types.is_list(field.type) or pa.types.is_large_list(field.type):
            column = pa.concat_arrays(data.column(i).chunks + [pa.array([], field.type)])
            data = data.set_column(i, field, column)
    return data


_SQL_OPS = {"=": "=", "==": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">=", "in": "IN",
            "not in": "NOT IN"}


def _ident(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def _literal(value: Any) -> str | None:
    """SQL literal of a filter value (None when the type has no safe literal here)."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)) and np.isfinite(value):
        return repr(float(value))
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return None


def sql_where(filters: Any) -> str | None:
    """`` WHERE ...`` for DNF filter tuples (``[(col, op, value), ...]`` AND-ed, or a list of such
    lists OR-ed), "" for no filter, None when a term cannot be written as SQL (the caller then uses
    pyarrow's own filter conversion)."""
    if filters is None or (isinstance(filters, (list, tuple)) and not filters):
        return ""
    if not isinstance(filters, (list, tuple)):
        return None
    groups = filters if all(isinstance(f, (list, tuple)) and f and isinstance(f[0], (list, tuple))
                            for f in filters) else [filters]
    ors = []
    for group in groups:
        ands = []
        for term in group:
            if not (isinstance(term, (list, tuple)) and len(term) == 3 and str(term[1]).lower() in _SQL_OPS):
                return None
            col, op, value = term[0], _SQL_OPS[str(term[1]).lower()], term[2]
            if op in ("IN", "NOT IN"):
                items = [_literal(v) for v in value] if isinstance(value, (list, tuple, set)) and value else [None]
                if None in items:
                    return None
                ands.append(f"{_ident(col)} {op} ({', '.join(items)})")
            else:
                lit = _literal(value)
                if lit is None:
                    return None
                ands.append(f"{_ident(col)} {op} {lit}")
        ors.append("(" + " AND ".join(ands) + ")")
    return " WHERE " + " OR ".join(ors)


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
