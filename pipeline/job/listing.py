"""Turn the job's inputs (paths, directories, globs, fsspec URIs) into a sorted list of sources.

Nothing here decodes media: kinds come from file extensions; unreadable content shows up later
as a decode error. Everything that cannot be listed becomes an ``errors`` row (stage "list").
"""
from __future__ import annotations

import hashlib
import os
from typing import Any, Iterable, Mapping

from pipeline.job.records import ErrorRecord, Source
from pipeline.storage import describe_error, filesystem, is_remote

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".ts"})


class UnsupportedMediaError(ValueError):
    """A file is neither an image nor a video posepipe can read."""


def media_kind(uri: str) -> str | None:
    """"image", "video" or None from the extension of ``uri``."""
    ext = os.path.splitext(uri.split("?", 1)[0])[1].lower()
    if ext in IMAGE_EXTENSIONS:
        return "image"
    if ext in VIDEO_EXTENSIONS:
        return "video"
    return None


def source_id(uri: str, size: int, etag: str) -> str:
    """16-hex stable id of a source from its URI, size in bytes and ETag/mtime."""
    return hashlib.sha256(f"{uri}\0{size}\0{etag}".encode()).hexdigest()[:16]


def _has_glob(path: str) -> bool:
    return any(c in path for c in "*?[")


def _uri(fs, path: str, remote: bool) -> str:
    return fs.unstrip_protocol(path) if remote else path


def _etag(info: Mapping[str, Any]) -> str:
    for key in ("ETag", "etag", "md5Hash", "mtime", "LastModified", "updated"):
        if info.get(key) is not None:
            return str(info[key]).strip('"')
    return ""


def list_sources(inputs: Iterable[str], storage_options: Mapping[str, Any] | None = None
                 ) -> tuple[list[Source], list[ErrorRecord]]:
    """Sources (sorted by URI, duplicates dropped) and listing errors for ``inputs``.

    Directories are searched recursively (hidden files skipped); a glob that matches nothing, a
    missing path, a missing bucket, refused credentials and non-media files are errors.
    """
    found: dict[str, Source] = {}
    errors: list[ErrorRecord] = []
    for item in inputs:
        remote = is_remote(item)
        try:
            fs, path = filesystem(item, storage_options)
            if _has_glob(path):
                infos = [fs.info(p) for p in sorted(fs.glob(path))]
                infos = [i for i in infos if i.get("type") == "file"]
                if not infos:
                    raise FileNotFoundError(f"no files match the pattern {item}")
            elif fs.isdir(path):
                infos = [i for i in fs.find(path, detail=True).values() if i.get("type") == "file"]
                infos = [i for i in infos if not any(part.startswith(".") for part in
                                                     i["name"][len(path.rstrip('/')):].split("/"))]
                if not infos:
                    raise FileNotFoundError(f"the folder {item} holds no files")
            else:
                infos = [fs.info(path)]
        except Exception as exc:  # noqa: BLE001 - any access failure becomes an errors row
            errors.append(ErrorRecord.from_exception(item, "list", exc, describe_error(item, exc)))
            continue
        for info in sorted(infos, key=lambda i: i["name"]):
            uri = _uri(fs, info["name"], remote)
            kind = media_kind(uri)
            if kind is None:
                exc = UnsupportedMediaError(uri)
                errors.append(ErrorRecord.from_exception(
                    uri, "list", exc,
                    f"{uri}: not an image or video (supported extensions: "
                    f"{', '.join(sorted(IMAGE_EXTENSIONS | VIDEO_EXTENSIONS))}); remove it or rename it"))
                continue
            size, etag = int(info.get("size") or 0), _etag(info)
            found.setdefault(uri, Source(uri, kind, size, etag, source_id(uri, size, etag)))
    return sorted(found.values(), key=lambda s: s.uri), errors
