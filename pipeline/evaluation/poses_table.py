"""A poses DataFrame <-> one Parquet file in the poses.v1 schema (for imported and exported tables)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline import storage, tables


def poses_table(poses: pd.DataFrame):
    """The pyarrow Table (full poses.v1 schema, source_id included) of a poses DataFrame."""
    columns = {}
    for f in tables.schema("poses"):
        if f.name not in poses.columns:
            raise ValueError(f"poses DataFrame lacks column {f.name!r} of the poses.v1 schema")
        col = poses[f.name]
        if pa.types.is_fixed_size_list(f.type):
            columns[f.name] = (np.stack([np.asarray(v, np.float32) for v in col]) if len(col)
                               else np.zeros((0, f.type.list_size), np.float32))
        else:
            columns[f.name] = [None if v is pd.NA or (isinstance(v, float) and np.isnan(v)) else v
                               for v in col.tolist()]
    return tables.from_columns("poses", columns)


def write_poses_parquet(poses: pd.DataFrame, uri: str) -> None:
    """Write ``poses`` to ``uri`` (local path or fsspec URI ending in .parquet) as one Parquet file."""
    if not uri.endswith(".parquet"):
        raise ValueError(f"output {uri} must name a .parquet file")
    fs, path = storage.filesystem(storage.absolute_uri(uri))
    storage.write_table_atomic(fs, path, poses_table(poses))
