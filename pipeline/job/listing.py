"""Turn the job's inputs (paths, directories, globs, fsspec URIs) into sources, streamed in order.

Nothing here decodes media: kinds come from file extensions; unreadable content shows up later
as a decode error. Everything that cannot be listed becomes an ``errors`` row (stage "list"),
never an exception.

Names:

- An input that exists is taken literally even if it holds ``*?[``; otherwise such an input is a
  glob. ``literal:PATH`` never globs (a missing literal path is an errors row).
- Local file names that are not valid UTF-8 (``caf\\xe9.jpg`` in Latin-1) are kept as ``str`` with
  surrogate escapes (os.fsdecode) in ``Source.open_path``, which opens the file; ``Source.uri``,
  which the tables store, writes each undecodable byte as ``%XX`` (upper-case hex) and each
  literal ``%`` of such a name as ``%25`` (:func:`local_uri`). Valid UTF-8 names are stored as they are.
"""
from __future__ import annotations

import codecs
import hashlib
import os
from typing import Any, Iterable, Iterator, Mapping, Sequence

from pipeline.job.records import ErrorRecord, Source
from pipeline.secrets import mask_text, mask_url, secret_values
from pipeline.storage import describe_error, filesystem, is_remote, split_literal

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".ts"})


class UnsupportedMediaError(ValueError):
    """A file is neither an image nor a video posepipe can read."""


def media_kind(uri: str) -> str | None:
    """"image", "video" or None from the extension of ``uri`` (an http(s) URL's query string ignored;
    elsewhere "?" is part of the name)."""
    if uri.startswith(("http://", "https://")):
        uri = uri.split("?", 1)[0]
    ext = os.path.splitext(uri)[1].lower()
    if ext in IMAGE_EXTENSIONS:
        return "image"
    if ext in VIDEO_EXTENSIONS:
        return "video"
    return None


def source_id(uri: str, size: int, etag: str) -> str:
    """16-hex stable id of a source from its URI, size in bytes and ETag/mtime."""
    return hashlib.sha256(f"{uri}\0{size}\0{etag}".encode()).hexdigest()[:16]


def _percent_escape(error: UnicodeDecodeError) -> tuple[str, int]:
    return "".join(f"%{b:02X}" for b in error.object[error.start:error.end]), error.end


codecs.register_error("posepipe-percent", _percent_escape)


def local_uri(path: str) -> str:
    """The valid-UTF-8 URI stored for local ``path`` (a str from the OS, maybe with surrogate escapes).

    Unchanged when the name is valid UTF-8; otherwise ``%`` becomes ``%25`` and every byte that is
    not UTF-8 becomes ``%XX``: ``/p/caf\\udce9.jpg`` (Latin-1 é) -> ``/p/caf%E9.jpg``.
    """
    raw = os.fsencode(path)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.replace(b"%", b"%25").decode("utf-8", errors="posepipe-percent")


def _has_glob(path: str) -> bool:
    return any(c in path for c in "*?[")


def _etag(info: Mapping[str, Any]) -> str:
    for key in ("ETag", "etag", "md5Hash", "mtime", "LastModified", "updated"):
        if info.get(key) is not None:
            return str(info[key]).strip('"')
    return ""


def _path_order(entry: os.DirEntry) -> str:
    try:
        return entry.name + "/" if entry.is_dir() else entry.name
    except OSError:
        return entry.name


def _walk_local(folder: str) -> Iterator[tuple[str, os.stat_result] | tuple[str, OSError]]:
    """(path, stat) of every file under ``folder`` in the order of their paths as strings (a folder
    ``a`` sorts as ``a/``, after ``a.jpg``), one directory in memory at a time; hidden names (".x")
    are skipped; (path, OSError) for a folder or file that cannot be read."""
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=_path_order)
    except OSError as exc:
        yield folder, exc
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        try:
            if entry.is_dir():
                yield from _walk_local(entry.path)
            elif entry.is_file():
                yield entry.path, entry.stat()
        except OSError as exc:
            yield entry.path, exc


def _local_files(item: str, path: str, literal: bool) -> Iterator[tuple[str, os.stat_result] | tuple[str, OSError]]:
    """(path, stat or OSError) of the files input ``item`` names on this machine, sorted."""
    if not literal and _has_glob(path) and not os.path.lexists(path):
        import glob

        matches = sorted(p for p in glob.glob(path, recursive=True) if os.path.isfile(p))
        if not matches:
            raise FileNotFoundError(f"no files match the pattern {item}")
        for p in matches:
            yield p, os.stat(p)
    elif os.path.isdir(path):
        empty = True
        for found in _walk_local(path):
            empty = False
            yield found
        if empty:
            raise FileNotFoundError(f"the folder {item} holds no files")
    else:
        yield path, os.stat(path)


#: keys per ListObjectsV2 request when an S3 folder is listed page by page (S3's maximum)
S3_PAGE_KEYS = 1000


async def _next_page(pages) -> dict | None:
    try:
        return await pages.__anext__()
    except StopAsyncIteration:
        return None


def _s3_pages(fs, path: str) -> Iterator[list[dict]]:
    """The object info dicts under the S3 folder ``path`` (s3fs), one ListObjectsV2 page at a time,
    in key order: S3 lists keys in UTF-8 byte order, which is Python's str order of the names.
    Only the page being read is held, so a prefix of 10^7 objects is never in memory at once."""
    from fsspec.asyn import sync

    bucket, key, _ = fs.split_path(path)
    prefix = key.rstrip("/") + "/" if key else ""
    # s3fs's own paging (each page retried like any of its requests); its public find() collects all pages.
    pages = fs._list_pages("list_objects_v2", Bucket=bucket, Prefix=prefix, MaxKeys=S3_PAGE_KEYS, **fs.req_kw)
    while (page := sync(fs.loop, _next_page, pages)) is not None:
        infos = []
        for c in page.get("Contents", []):
            if not c["Key"].endswith("/"):  # a folder marker, not a file
                c["type"] = "file"
                fs._fill_info(c, bucket)
                infos.append(c)
        yield infos


def _folder_files(fs, path: str) -> Iterator[dict]:
    """Info dicts of the files below folder ``path``, sorted by name: streamed page by page on S3,
    from one ``find`` on other filesystems."""
    protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    if "s3" in protocols and hasattr(fs, "_list_pages") and not getattr(fs, "version_aware", False):
        last = ""
        for infos in _s3_pages(fs, path):
            for info in infos:
                if info["name"] < last:
                    raise RuntimeError(f"the store listed {info['name']!r} after {last!r}: not in key order, "
                                       "which S3 guarantees; list this prefix with a glob instead")
                last = info["name"]
                yield info
        return
    yield from sorted((i for i in fs.find(path, detail=True).values() if i.get("type") == "file"),
                      key=lambda i: i["name"])


def _remote_files(fs, item: str, path: str, literal: bool) -> Iterator[dict]:
    """fsspec info dicts of the files input ``item`` names on ``fs``, sorted by name (hidden files
    and folders, ``.name``, skipped below a folder)."""
    if not literal and _has_glob(path) and not fs.exists(path):
        infos = sorted((i for i in fs.glob(path, detail=True).values() if i.get("type") == "file"),
                       key=lambda i: i["name"])
        if not infos:
            raise FileNotFoundError(f"no files match the pattern {item}")
        yield from infos
    elif fs.isdir(path):
        base, found = path.rstrip("/"), False
        for info in _folder_files(fs, base):
            if not any(part.startswith(".") for part in info["name"][len(base):].split("/")):
                found = True
                yield info
        if not found:
            raise FileNotFoundError(f"the folder {item} holds no files")
    else:
        yield fs.info(path)


def _unsupported(uri: str) -> ErrorRecord:
    exc = UnsupportedMediaError(uri)
    return ErrorRecord.from_exception(
        uri, "list", exc, f"{uri}: not an image or video (supported extensions: "
                          f"{', '.join(sorted(IMAGE_EXTENSIONS | VIDEO_EXTENSIONS))}); remove it or rename it")


def _entries(item: str, storage_options: Mapping[str, Any] | None) -> Iterator[Source | ErrorRecord]:
    """Sources and errors rows of one input, in sorted order (raises for an input that cannot be listed)."""
    target, literal = split_literal(item)
    if is_remote(target):
        fs, path = filesystem(target, storage_options)
        for info in _remote_files(fs, item, path, literal):
            uri = fs.unstrip_protocol(info["name"])
            size, etag = int(info.get("size") or 0), _etag(info)
            yield from _classified(Source(uri, "", size, etag, source_id(uri, size, etag)), storage_options)
        return
    path = os.path.abspath(target[len("file://"):] if target.startswith("file://") else target)
    for name, stat in _local_files(item, path, literal):
        uri = local_uri(name)
        if isinstance(stat, OSError):
            yield ErrorRecord.from_exception(uri, "list", stat, describe_error(uri, stat))
            continue
        etag = str(stat.st_mtime)  # what fsspec's local info reports as mtime (earlier listings' ids)
        yield from _classified(Source(uri, "", stat.st_size, etag, source_id(uri, stat.st_size, etag),
                                      open_path=name), storage_options)


def _classified(found: Source, storage_options) -> Iterator[Source | ErrorRecord]:
    """``found`` with its media kind; the members of a container (pipeline.job.containers); or an
    errors row for a file that is neither."""
    from dataclasses import replace

    from pipeline.job import containers

    kind = media_kind(found.uri)
    if kind is not None:
        yield replace(found, kind=kind)
    elif containers.is_container(found.uri):
        try:
            yield from containers.expand(found, storage_options)
        except Exception as exc:  # noqa: BLE001 - an unreadable container is an errors row
            yield ErrorRecord.from_exception(found.uri, "list", exc, f"{found.uri}: cannot read the container "
                                             f"({type(exc).__name__}: {exc})")
    else:
        yield _unsupported(found.uri)


def iter_sources(inputs: Iterable[str], storage_options: Mapping[str, Any] | None = None, *,
                 seen: set | None = None) -> Iterator[Source | ErrorRecord]:
    """Sources and listing errors of ``inputs``, streamed: each input's files in sorted order.

    Directories are searched recursively (hidden files skipped), local ones one directory at a
    time; a file named by several inputs comes once (the first time). A glob that matches nothing,
    a missing path, a missing bucket, refused credentials, unreadable folders and non-media files
    are ErrorRecords naming the input (URL passwords and storage_options secrets masked); listing
    never raises for an input.

    seen: the files already listed, shared by calls that list the inputs of one job one by one
    (updated as files come). Without it, files are remembered unless ``inputs`` is a sequence of
    one input: one input never names a file twice, so it is listed in constant memory.
    """
    if seen is None and not (isinstance(inputs, Sequence) and len(inputs) == 1):
        seen = set()
    secrets = secret_values(storage_options or {})
    for item in inputs:
        try:
            for entry in _entries(item, storage_options):
                if isinstance(entry, Source) and seen is not None:
                    if (entry.open_path, entry.member) in seen:
                        continue
                    seen.add((entry.open_path, entry.member))
                yield entry
        except Exception as exc:  # noqa: BLE001 - any access failure becomes an errors row
            shown = local_uri(item) if not is_remote(split_literal(item)[0]) else mask_url(item)
            message = mask_text(describe_error(shown, _printable(exc)), secrets | secret_values(item))
            yield ErrorRecord.from_exception(shown, "list", exc, message)


def _printable(exc: BaseException) -> BaseException:
    """``exc`` if its text is valid UTF-8, else a copy of its type whose message has names percent-escaped."""
    text = str(exc)
    try:
        text.encode("utf-8")
        return exc
    except UnicodeEncodeError:
        return type(exc)(local_uri(text)) if isinstance(exc, OSError) else ValueError(local_uri(text))


def list_sources(inputs: Iterable[str], storage_options: Mapping[str, Any] | None = None
                 ) -> tuple[list[Source], list[ErrorRecord]]:
    """(sources sorted by URI, listing errors) of ``inputs``: :func:`iter_sources` collected."""
    sources: list[Source] = []
    errors: list[ErrorRecord] = []
    for entry in iter_sources(inputs, storage_options):
        (sources if isinstance(entry, Source) else errors).append(entry)
    sources.sort(key=lambda s: s.uri)
    return sources, errors
