"""The job manifest (<output>/_manifest.json) and the per-shard markers (<output>/_shards/<id>.json).

A marker is written only after all of a shard's data files are in place, so "marker exists" is
the definition of a finished shard; the manifest is the human/tool-readable record of the job.
"""
from __future__ import annotations

import json
from typing import Any, Mapping

from pipeline.storage import describe_error, filesystem, join, write_bytes_atomic

MANIFEST = "_manifest.json"


class OutputConflictError(RuntimeError):
    """The output folder already holds results of a different model or configuration."""


class OutputAccessError(RuntimeError):
    """The output location cannot be read or written (missing bucket, refused credentials, ...)."""


def read_manifest(output: str, storage_options: Mapping[str, Any] | None = None) -> dict | None:
    """The manifest at ``output`` as a dict, or None when there is none yet."""
    fs, path = filesystem(output, storage_options)
    try:
        return json.loads(fs.cat_file(join(path, MANIFEST)))
    except FileNotFoundError:
        return None


def check_output(output: str, model_id: str, config_id: str,
                 storage_options: Mapping[str, Any] | None = None) -> dict | None:
    """Check ``output`` is reachable and holds nothing of another model/config; returns its manifest.

    Raises OutputAccessError (with what to check) or OutputConflictError.
    """
    try:
        existing = read_manifest(output, storage_options)
        fs, path = filesystem(output, storage_options)
        if existing is None:  # prove we may write here before any work starts
            probe = join(path, "_shards", ".write-check")
            write_bytes_atomic(fs, probe, b"ok")
            fs.rm_file(probe)
    except Exception as exc:  # noqa: BLE001
        raise OutputAccessError(f"cannot use the output {describe_error(output, exc)}") from exc
    if existing and (existing.get("model_id"), existing.get("config_id")) != (model_id, config_id):
        raise OutputConflictError(
            f"{output} already holds results of model {existing.get('model_id')} with config "
            f"{existing.get('config_id')}; this job uses {model_id} / {config_id}. "
            "Write to a new output folder (or delete the old one).")
    return existing


def finished_shards(output: str, storage_options: Mapping[str, Any] | None = None) -> dict[str, dict]:
    """{shard_id: marker dict} of every finished shard at ``output``."""
    fs, path = filesystem(output, storage_options)
    folder = join(path, "_shards")
    try:
        names = [p for p in fs.find(folder) if p.endswith(".json")]
    except FileNotFoundError:
        return {}
    if not names:
        return {}
    blobs = fs.cat(names)
    out = {}
    for name, blob in blobs.items():
        body = json.loads(blob)
        if body.get("status") == "done":
            out[body["shard_id"]] = body
    return out


def write_manifest(output: str, body: Mapping[str, Any], storage_options: Mapping[str, Any] | None = None) -> None:
    """Write the manifest JSON atomically (temp + rename locally, one PUT on object stores)."""
    fs, path = filesystem(output, storage_options)
    write_bytes_atomic(fs, join(path, MANIFEST), json.dumps(body, indent=1, default=str).encode())
