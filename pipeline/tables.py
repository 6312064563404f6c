"""The output tables (poses, frames, errors, tracks) as pyarrow schemas, loaded once from schemas/*.v1.json.

Type strings in the JSON: "string", "int32", "int64", "float32", "float64",
"timestamp[ms, tz=UTC]" and "fixed_size_list<float32>[N]".
"""
from __future__ import annotations

import functools
import json
import os
import re
from pathlib import Path

import pyarrow as pa

#: Where the schemas/*.v1.json files are: $POSEPIPE_SCHEMA_DIR, else pipeline/schemas (a link to the
#: repository's schemas/ folder in a checkout; package data in a wheel).
SCHEMA_DIR = Path(os.environ.get("POSEPIPE_SCHEMA_DIR", Path(__file__).resolve().parent / "schemas"))
TABLES: tuple[str, ...] = ("poses", "frames", "errors", "tracks")
#: Tables written under hive partitions ``source_id=<id>/`` (the column lives in the path, not the file).
PARTITIONED: frozenset[str] = frozenset({"poses", "frames", "tracks"})
PARTITION_KEY = "source_id"

_SCALARS = {
    "string": pa.string(), "int32": pa.int32(), "int64": pa.int64(),
    "float32": pa.float32(), "float64": pa.float64(), "bool": pa.bool_(),
}
_FIXED_LIST = re.compile(r"^fixed_size_list<(\w+)>\[(\d+)\]$")
_TIMESTAMP = re.compile(r"^timestamp\[(s|ms|us|ns)(?:,\s*tz=([\w/+-]+))?\]$")


def parse_type(text: str) -> pa.DataType:
    """The pyarrow type named by a schema JSON type string (see module doc); ValueError if unknown."""
    text = text.strip()
    if text in _SCALARS:
        return _SCALARS[text]
    m = _FIXED_LIST.match(text)
    if m and m.group(1) in _SCALARS:
        return pa.list_(_SCALARS[m.group(1)], int(m.group(2)))
    m = _TIMESTAMP.match(text)
    if m:
        return pa.timestamp(m.group(1), tz=m.group(2))
    raise ValueError(f"unknown column type {text!r} in a table schema")


@functools.cache
def _load(name: str) -> tuple[pa.Schema, int]:
    if name not in TABLES:
        raise KeyError(f"unknown table {name!r}; tables: {', '.join(TABLES)}")
    path = SCHEMA_DIR / f"{name}.v1.json"
    try:
        spec = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"table schema {path} not found; set POSEPIPE_SCHEMA_DIR to the folder holding "
                                "the posepipe schemas/*.v1.json files") from None
    fields = [
        pa.field(f["name"], parse_type(f["type"]), nullable=bool(f.get("nullable", True)),
                 metadata={"doc": f.get("doc", "")})
        for f in spec["fields"]
    ]
    meta = {"table": spec["table"], "version": str(spec["version"]), "doc": spec.get("doc", "")}
    return pa.schema(fields, metadata=meta), int(spec["version"])


def schema(name: str) -> pa.Schema:
    """The full pyarrow schema of table ``name`` (with the partition column)."""
    return _load(name)[0]


def version(name: str) -> int:
    """Schema version of table ``name`` (the ``v1`` in its file name)."""
    return _load(name)[1]


def file_schema(name: str) -> pa.Schema:
    """Schema of the Parquet files of ``name``: the full schema minus the hive partition column."""
    s = schema(name)
    if name in PARTITIONED:
        s = s.remove(s.get_field_index(PARTITION_KEY))
    return s


def versions() -> dict[str, int]:
    """{table name: schema version} for every table (recorded in the job manifest)."""
    return {t: version(t) for t in TABLES}


def from_columns(name: str, columns: dict) -> pa.Table:
    """A pyarrow Table of ``name`` built from {column: list/array}; every schema column must be given.

    Fixed-size list columns accept a float32 numpy array [rows, N] (or a list of length-N rows).
    Raises ValueError naming the table and column on a missing column or a type mismatch.
    """
    import numpy as np

    s = schema(name)
    missing = [f.name for f in s if f.name not in columns]
    if missing:
        raise ValueError(f"table {name}: missing columns {missing}")
    arrays = []
    for f in s:
        value = columns[f.name]
        if pa.types.is_fixed_size_list(f.type) and isinstance(value, np.ndarray):
            flat = pa.array(np.ascontiguousarray(value, dtype=np.float32).reshape(-1))
            arrays.append(pa.FixedSizeListArray.from_arrays(flat, f.type.list_size))
        else:
            try:
                arrays.append(pa.array(value, type=f.type))
            except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                raise ValueError(f"table {name}, column {f.name}: {exc}") from exc
    return pa.Table.from_arrays(arrays, schema=s)
