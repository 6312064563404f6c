"""Inputs inside the containers datasets come in, listed member by member:

- WebDataset tar shards (``.tar``): every image member is a source ``<tar uri>#<member name>``,
  read back by byte range (no unpacking); the member's key is kept in its URI.
- Parquet files with an image column (``image``/``img``/``jpg``/``png`` holding bytes, or the
  ``{"bytes", "path"}`` struct Hugging Face ``datasets`` writes): every row is a source
  ``<file uri>#row=<i>``; a Hugging Face dataset folder is a folder of such files.
- Manifests (``.csv``, ``.jsonl``, or ``.parquet`` with a ``uri`` column): each row names an image or
  video; every other column is carried into the ``frames`` table as a pass-through column.

Nothing is decoded here; a member that is not an image becomes an errors row naming it.
"""
from __future__ import annotations

import csv
import io
import json
import os
import tarfile
from typing import Any, Iterator, Mapping

from pipeline.job.records import ErrorRecord, Source

CONTAINER_EXTENSIONS = frozenset({".tar", ".parquet", ".csv", ".jsonl"})
IMAGE_COLUMNS = ("image", "img", "jpg", "jpeg", "png")


class ContainerError(ValueError):
    """A container (tar, Parquet, manifest) is unreadable or holds nothing posepipe can label."""


def is_container(uri: str) -> bool:
    """Whether ``uri`` names a container by its extension."""
    return os.path.splitext(uri)[1].lower() in CONTAINER_EXTENSIONS


def _member_source(container: Source, key: str, member: str, kind: str = "image",
                   extra: tuple = ()) -> Source:
    from pipeline.job.listing import source_id

    uri = f"{container.uri}#{key}"
    return Source(uri, kind, container.size, container.etag, source_id(uri, container.size, container.etag),
                  open_path=container.open_path, member=member, extra=extra)


def _tar_members(container: Source, fs, path: str) -> Iterator[Source | ErrorRecord]:
    from pipeline.job.listing import media_kind

    with fs.open(path, "rb") as f, tarfile.open(fileobj=f, mode="r|*") as tar:
        for info in tar:
            if not info.isfile():
                continue
            if media_kind(info.name) != "image":
                continue  # WebDataset's other members (.json, .cls, .txt) belong to the sample
            yield _member_source(container, info.name, f"tar:{info.offset_data}:{info.size}")


def _image_column(schema) -> str | None:
    import pyarrow as pa

    for name in IMAGE_COLUMNS:
        if name in schema.names:
            t = schema.field(name).type
            if pa.types.is_binary(t) or pa.types.is_large_binary(t) or (
                    pa.types.is_struct(t) and t.get_field_index("bytes") >= 0):
                return name
    return None


def _manifest_rows(container: Source, fs, path: str) -> Iterator[dict]:
    ext = os.path.splitext(container.uri)[1].lower()
    with fs.open(path, "rb") as f:
        if ext == ".csv":
            yield from csv.DictReader(io.TextIOWrapper(f, encoding="utf-8"))
        elif ext == ".jsonl":
            for line in io.TextIOWrapper(f, encoding="utf-8"):
                if line.strip():
                    yield json.loads(line)
        else:
            import pyarrow.parquet as pq

            for batch in pq.ParquetFile(f).iter_batches():
                yield from batch.to_pylist()


def _manifest_sources(container: Source, fs, path: str) -> Iterator[Source | ErrorRecord]:
    from pipeline.job.listing import media_kind, source_id
    from pipeline.storage import absolute_uri

    base = os.path.dirname(container.uri)
    for i, row in enumerate(_manifest_rows(container, fs, path)):
        target = row.get("uri")
        if not isinstance(target, str) or not target:
            raise ContainerError(f"{container.uri}: row {i} has no 'uri' value; a manifest needs a uri column")
        uri = absolute_uri(target, base)
        kind = media_kind(uri)
        if kind is None:
            yield ErrorRecord.from_exception(uri, "list", ContainerError(uri),
                                             f"{uri} (row {i} of {container.uri}): not an image or video")
            continue
        extra = tuple(sorted((str(k), "" if v is None else str(v)) for k, v in row.items() if k != "uri"))
        size, etag = int(row.get("size") or 0), str(row.get("etag") or "")
        yield Source(uri, kind, size, etag, source_id(uri, size, etag), extra=extra)


def expand(container: Source, storage_options: Mapping[str, Any] | None = None) -> Iterator[Source | ErrorRecord]:
    """The sources (and errors rows) inside ``container`` (a Source whose URI names a container)."""
    from pipeline.storage import filesystem

    fs, path = filesystem(container.open_path, storage_options)
    ext = os.path.splitext(container.uri)[1].lower()
    if ext == ".tar":
        yield from _tar_members(container, fs, path)
        return
    if ext == ".parquet":
        import pyarrow.parquet as pq

        with fs.open(path, "rb") as f:
            meta = pq.ParquetFile(f)
            schema, groups = meta.schema_arrow, [meta.metadata.row_group(g).num_rows
                                                 for g in range(meta.num_row_groups)]
        column = _image_column(schema)
        if column is not None:
            row = 0
            for g, n in enumerate(groups):
                for r in range(n):
                    yield _member_source(container, f"row={row}", f"parquet:{column}:{g}:{r}")
                    row += 1
            return
        if "uri" not in schema.names:
            raise ContainerError(f"{container.uri}: a Parquet input needs an image column ({', '.join(IMAGE_COLUMNS)}: "
                                 "bytes or {bytes, path}) or a 'uri' column (a manifest)")
    yield from _manifest_sources(container, fs, path)


def read_member(source: Source, storage_options: Mapping[str, Any] | None = None, cache: dict | None = None) -> bytes:
    """The bytes of a container member (``source.member``): a byte range of a tar, or one cell of a
    Parquet image column. ``cache`` (a dict) keeps Parquet row groups read for one shard."""
    from pipeline.storage import filesystem

    fs, path = filesystem(source.open_path, storage_options)
    kind, *where = source.member.split(":")
    if kind == "tar":
        offset, size = int(where[0]), int(where[1])
        return fs.cat_file(path, start=offset, end=offset + size)
    column, group, row = where[0], int(where[1]), int(where[2])
    key = (source.open_path, column, group)
    if cache is None or key not in cache:
        import pyarrow.parquet as pq

        with fs.open(path, "rb") as f:
            table = pq.ParquetFile(f).read_row_group(group, columns=[column])
        if cache is not None:
            cache[key] = table
    else:
        table = cache[key]
    value = table.column(0)[row].as_py()
    data = value.get("bytes") if isinstance(value, dict) else value
    if not data:
        raise ContainerError(f"{source.uri}: the image cell is empty")
    return data
