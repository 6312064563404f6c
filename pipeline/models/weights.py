"""Where pretrained weight files live and how they are read and checked.

The model directory is ``$POSEPIPE_MODEL_DIR`` when set, else ``<user cache dir>/posepipe/models``
(platformdirs). It may be a local path or any fsspec URI (``file://``, ``s3://``, ``https://``, ...).
A registry entry's files are read from ``<model_dir>/<entry.folder>/<file name>`` and checked
against their sha256 digests before any network is built from them.
"""
from __future__ import annotations

import hashlib
import os
import posixpath

import fsspec
import platformdirs

from pipeline.models.registry import WeightsEntry

MODEL_DIR_ENV = "POSEPIPE_MODEL_DIR"


class WeightsError(RuntimeError):
    """A weight file is missing, unreadable or does not match its registered sha256."""


def default_model_dir() -> str:
    """The model directory: ``$POSEPIPE_MODEL_DIR`` if set, else the per-user cache folder."""
    env = os.environ.get(MODEL_DIR_ENV)
    if env:
        return env
    return os.path.join(platformdirs.user_cache_dir("posepipe"), "models")


def weight_path(entry: WeightsEntry, file_name: str, model_dir: str | os.PathLike | None = None) -> str:
    """The path or URI of ``file_name`` of ``entry`` inside ``model_dir`` (default: :func:`default_model_dir`)."""
    root = str(model_dir) if model_dir is not None else default_model_dir()
    if "://" in root:
        return posixpath.join(root.rstrip("/"), entry.folder, file_name)
    return os.path.join(root, entry.folder, file_name)


def sha256_hex(data: bytes) -> str:
    """Lower-case hex sha256 digest of ``data``."""
    return hashlib.sha256(data).hexdigest()


def fetch_files(entry: WeightsEntry, model_dir: str | os.PathLike | None = None) -> dict[str, bytes]:
    """Read and verify every file of ``entry``; returns {file name: bytes}.

    Raises :class:`WeightsError` naming the path searched, the ``POSEPIPE_MODEL_DIR`` variable and
    the upstream source when a file is missing, and both digests when a file's sha256 differs.
    """
    out: dict[str, bytes] = {}
    for wf in entry.files:
        path = weight_path(entry, wf.name, model_dir)
        try:
            with fsspec.open(path, "rb") as fh:
                data = fh.read()
        except (FileNotFoundError, IsADirectoryError, PermissionError, OSError) as exc:
            raise WeightsError(
                f"weights file for model {entry.name!r} not found or unreadable: {path} ({exc.__class__.__name__}: {exc}).\n"
                f"Put {wf.name!r} into the folder {entry.folder!r} of your model directory "
                f"(set ${MODEL_DIR_ENV}, currently {os.environ.get(MODEL_DIR_ENV, 'unset')!r}; "
                f"default {os.path.join(platformdirs.user_cache_dir('posepipe'), 'models')!r}). "
                f"Get it from {entry.source_url} (license: {entry.license})."
            ) from exc
        digest = sha256_hex(data)
        if digest != wf.sha256:
            raise WeightsError(
                f"sha256 mismatch for {path}: expected {wf.sha256}, got {digest}. The file is corrupt or a "
                f"different version than model {entry.name!r} expects; re-download it from {entry.source_url}."
            )
        out[wf.name] = data
    return out
