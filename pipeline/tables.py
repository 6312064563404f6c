"""The output tables (poses, frames, errors, tracks) and the internal shard_log as pyarrow schemas,
loaded once from schemas/*.v1.json.

Type strings in the JSON: "string", "int32", "int64", "float32", "float64", "bool",
"timestamp[ms, tz=UTC]" and "fixed_size_list<float32>[N]". Delta Lake stores fixed-size lists as
plain lists and timestamps in microseconds (:func:`delta_schema`); the readers cast back.
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
#: The user-facing tables, each a Delta table at ``<output>/<name>``.
TABLES: tuple[str, ...] = ("poses", "frames", "errors", "tracks")
#: Internal tables, each a Delta table at ``<output>/_posepipe/<name>``.
INTERNAL: tuple[str, ...] = ("shard_log",)

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
    if name not in TABLES + INTERNAL:
        raise KeyError(f"unknown table {name!r}; tables: {', '.join(TABLES + INTERNAL)}")
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
    """The pyarrow schema of table ``name`` (what the readers return)."""
    return _load(name)[0]


def version(name: str) -> int:
    """Schema version of table ``name`` (the ``v1`` in its file name)."""
    return _load(name)[1]


def _delta_type(t: pa.DataType) -> pa.DataType:
    if pa.types.is_fixed_size_list(t):
        return pa.list_(t.value_type)
    if pa.types.is_timestamp(t):
        return pa.timestamp("us", tz=t.tz)
    return t


@functools.cache
def delta_schema(name: str) -> pa.Schema:
    """Schema of ``name`` as stored in Delta Lake: fixed-size lists as lists, timestamps in microseconds."""
    s = schema(name)
    return pa.schema([f.with_type(_delta_type(f.type)) for f in s], metadata=s.metadata)


def to_delta(name: str, table: pa.Table) -> pa.Table:
    """``table`` (of :func:`schema`, plus any pass-through columns) cast to :func:`delta_schema` for writing."""
    full = delta_schema(name)
    fields = [full.field(c) if c in full.names else table.schema.field(c) for c in table.column_names]
    return table.cast(pa.schema(fields, metadata=full.metadata))


def from_delta(name: str, table: pa.Table) -> pa.Table:
    """A table read from Delta (any subset of the columns) cast back to :func:`schema` types."""
    full = schema(name)
    fields = [full.field(c) if c in full.names else table.schema.field(c) for c in table.column_names]
    return table.cast(pa.schema(fields, metadata=full.metadata))


def versions() -> dict[str, int]:
    """{table name: schema version} for every table (recorded in the job manifest)."""
    return {t: version(t) for t in TABLES + INTERNAL}


def from_columns(name: str, columns: dict) -> pa.Table:
    """A pyarrow Table of ``name`` built from {column: list/array}; every non-nullable column must be
    given (nullable columns left out are all null).

    Fixed-size list columns accept a float32 numpy array [rows, N] (or a list of length-N rows).
    Raises ValueError naming the table and column on a missing column or a type mismatch.
    """
    import numpy as np

    s = schema(name)
    missing = [f.name for f in s if f.name not in columns and not f.nullable]
    if missing:
        raise ValueError(f"table {name}: missing columns {missing}")
    rows = len(next(iter(columns.values()))) if columns else 0
    arrays = []
    for f in s:
        if f.name not in columns:
            arrays.append(pa.nulls(rows, f.type))
            continue
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
