"""Where bytes live: local paths and any fsspec URI (s3://, gs://, memory://), with atomic writes.

Local writes go to a hidden temp file in the target folder and are renamed into place; object
stores get one PUT per file (an object appears whole or not at all). Readers of the output
folders skip names starting with "." or "_", so temp files and markers never look like data.
"""
from __future__ import annotations

import difflib
import inspect
import io
import os
import uuid
from typing import Any, Iterable, Mapping

import fsspec
from fsspec.implementations.local import LocalFileSystem


#: An input starting with this is a literal path or URI: ``*?[`` in it are not glob patterns.
LITERAL_PREFIX = "literal:"

#: Options fsspec takes for every filesystem (instance and listings caches), beside each class's own.
COMMON_STORAGE_OPTIONS = frozenset({"skip_instance_cache", "use_listings_cache", "listings_expiry_time", "max_paths"})


class StorageOptionsError(ValueError):
    """storage_options hold a key the chosen filesystem does not take; the message lists the accepted ones."""


def split_literal(item: str) -> tuple[str, bool]:
    """(``item`` without a leading ``literal:``, whether it had one)."""
    if item.startswith(LITERAL_PREFIX):
        return item[len(LITERAL_PREFIX):], True
    return item, False


def is_remote(uri: str) -> bool:
    """True when ``uri`` names an fsspec protocol other than the local file system."""
    proto = fsspec.utils.get_protocol(uri)
    return proto not in ("file", "local")


def absolute_uri(uri: str | os.PathLike, base: str | None = None) -> str:
    """``uri`` with a local relative path made absolute (against ``base`` or the CWD); remote URIs unchanged."""
    uri = os.fspath(uri)
    if is_remote(uri):
        return uri
    path = uri[len("file://"):] if uri.startswith("file://") else uri
    path = os.path.expanduser(path)
    if not os.path.isabs(path):
        path = os.path.join(base or os.getcwd(), path)
    return os.path.normpath(path)


def accepted_storage_options(protocol: str) -> tuple[str, frozenset[str]]:
    """(filesystem class name, option names its constructor takes) for fsspec ``protocol`` ("s3", "gs"...).

    The names are the named parameters of the class's ``__init__`` and of its bases' (for s3fs:
    anon, endpoint_url, key, secret, token, client_kwargs, config_kwargs, ...) plus
    COMMON_STORAGE_OPTIONS. Raises ImportError (fsspec's message says what to install) when the
    protocol's package is missing, ValueError for a protocol fsspec does not know.
    """
    cls = fsspec.get_filesystem_class(protocol)
    names = set(COMMON_STORAGE_OPTIONS)
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None or klass is object:
            continue
        names.update(name for name, p in inspect.signature(init).parameters.items()
                     if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))
    return f"{cls.__module__.split('.')[0]}.{cls.__name__}", frozenset(names)


def check_storage_options(uris: Iterable[str], storage_options: Mapping[str, Any]) -> None:
    """Raise StorageOptionsError if ``storage_options`` has a key that a filesystem of ``uris`` does not take.

    Local paths take no options: options given for a job whose locations are all local are an error.
    Chained URLs (``simplecache::s3://...``) are not checked. The message names the key, a close
    match (``endpoint`` -> ``endpoint_url``) and the accepted keys.
    """
    if not storage_options:
        return
    protocols = sorted({fsspec.utils.get_protocol(u) for u in uris if is_remote(u) and "::" not in u})
    if not protocols:
        if any("::" in u for u in uris):
            return
        raise StorageOptionsError(
            f"{', '.join(map(repr, storage_options))}: every input and the output are local paths, which take no "
            f"storage_options; remove them (they are for remote locations such as s3://)")
    for protocol in protocols:
        try:
            name, accepted = accepted_storage_options(protocol)
        except (ImportError, ValueError) as exc:  # package missing / protocol unknown to fsspec
            raise StorageOptionsError(f"cannot check options for {protocol}:// locations: {exc}") from None
        unknown = sorted(set(storage_options) - accepted)
        if unknown:
            hints = [f"{k!r} (did you mean {close[0]!r}?)" if (close := difflib.get_close_matches(k, accepted, 1))
                     else repr(k) for k in unknown]
            raise StorageOptionsError(
                f"unknown key(s) {', '.join(hints)} for {protocol}:// ({name}); accepted keys: "
                f"{', '.join(sorted(accepted))}")


def filesystem(uri: str, storage_options: Mapping[str, Any] | None = None):
    """(fsspec filesystem, path inside it) for ``uri``; ``storage_options`` go to the filesystem."""
    fs, path = fsspec.core.url_to_fs(uri, **dict(storage_options or {}))
    return fs, path


def join(base: str, *parts: str) -> str:
    """``base`` with ``parts`` appended using "/" (valid for local paths and URIs alike)."""
    out = base.rstrip("/")
    for p in parts:
        out += "/" + p.strip("/")
    return out


def write_bytes_atomic(fs, path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` on ``fs`` so readers see either the old file or the whole new one."""
    if isinstance(fs, LocalFileSystem):
        folder, name = os.path.split(path)
        os.makedirs(folder, exist_ok=True)
        tmp = os.path.join(folder, f".{name}.{uuid.uuid4().hex[:8]}.tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    else:
        fs.pipe_file(path, data)  # a single PUT


def write_table_atomic(fs, path: str, table) -> int:
    """Write pyarrow ``table`` as one Parquet file at ``path`` atomically; returns its size in bytes."""
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    data = buf.getvalue()
    write_bytes_atomic(fs, path, data)
    return len(data)


def remove_if_exists(fs, path: str) -> None:
    """Delete ``path`` on ``fs`` if it is there."""
    try:
        fs.rm_file(path)
    except FileNotFoundError:
        pass


def describe_error(uri: str, exc: BaseException) -> str:
    """A one-line message for a failed access to ``uri`` saying what to check next."""
    text = f"{type(exc).__name__}: {exc}".strip()
    low = text.lower()
    if "nosuchbucket" in low or "bucket does not exist" in low or "specified bucket does not exist" in low:
        hint = "the bucket does not exist: check the bucket name and region/endpoint"
    elif any(k in low for k in ("invalidaccesskeyid", "access key id", "signaturedoesnotmatch", "signature we calculated",
                                "accessdenied", "access denied", "forbidden", "403", "credentials", "expiredtoken")) \
            or (isinstance(exc, PermissionError) and is_remote(uri)):
        hint = ("access was refused: check the credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or "
                "storage_options key/secret) and that they may read/write this location")
    elif isinstance(exc, FileNotFoundError) or "no such file" in low or "not found" in low:
        hint = "nothing exists at this location: check the path or URI"
    elif isinstance(exc, PermissionError):
        hint = "permission denied: check the file permissions"
    else:
        hint = "check that the location exists and is reachable"
    return f"{uri}: {hint} ({text})"
