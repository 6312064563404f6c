"""Run an export over a job output on Ray: parallel, resumable and exactly-once.

The work is cut into *parts*: one per source for the per-frame formats (openpose-json, controlnet),
one per Parquet file for hf-dataset. Ray tasks take groups of parts (about ``frames_per_task``
frames each). Every file is written atomically under a deterministic name (temp file + rename
locally, one PUT on object stores); after a part's files, its completion record
``DEST/_export/<part id>.json`` is written, holding the format, its options, and per source the row
counts and sha256 of the rows it was made from (pipeline.export.sources.SourceRows.digest). A re-run
skips a part whose record matches; a part whose rows or options changed is redone, and files its
previous record lists that the new export does not write are removed, as are the files and records
of parts the new export no longer has.
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from pipeline import storage
from pipeline.export.controlnet import ControlNet
from pipeline.export.hf_dataset import HFDataset
from pipeline.export.openpose_json import OpenPoseJson
from pipeline.export.sources import export_stems, read_sources

#: Formats exported per source / per file on Ray, by name. "coco" (one results JSON) is handled apart.
FORMATS = {"openpose-json": OpenPoseJson, "controlnet": ControlNet, "hf-dataset": HFDataset}
ALL_FORMATS = (*FORMATS, "coco")
RECORD_FOLDER = "_export"
FRAMES_PER_TASK = 256


@dataclass(frozen=True)
class ExportSummary:
    """What one export call did. parts: units with a completion record (sources, or Parquet files for
    hf-dataset); parts_skipped: found complete from an earlier run; files_written: files written by
    this call; sources, frames: in the job output."""

    format: str
    dest: str
    parts: int
    parts_written: int
    parts_skipped: int
    files_written: int
    sources: int
    frames: int
    elapsed_s: float


def make_format(name: str, **options: Any):
    """The format object for ``name`` with ``options`` (ValueError naming a bad name or option)."""
    if name not in FORMATS:
        raise ValueError(f"unknown export format {name!r}; choose one of {', '.join(ALL_FORMATS)}")
    cls = FORMATS[name]
    known = [f.name for f in fields(cls)]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(f"{name}: unknown option(s) {', '.join(unknown)}; it takes "
                         f"{', '.join(known) or 'no options'}")
    return cls(**options)


def export(output: str, format: str, dest: str, *, storage_options: Mapping[str, Any] | None = None,
           ray_address: str | None = None, num_cpus: int | None = None,
           frames_per_task: int = FRAMES_PER_TASK, **options: Any) -> ExportSummary:
    """Export the job output ``output`` (folder or URI) in ``format`` to ``dest`` (folder or URI;
    for "coco" a results .json file).

    format:  "openpose-json" (options layout="coco18"|"body25", keypoint_scale="pixels"|"unit"|
             "signed-unit"), "controlnet" (resolution=None|short side px), "hf-dataset"
             (resolution, text, min_people, min_visible, num_files) or "coco" (annotations=None|
             annotation JSON whose images[].file_name give the image ids).
    storage_options: fsspec options for remote ``output``, ``dest`` and (hf-dataset) sources; never
             written anywhere.
    ray_address: Ray to join when Ray is not yet initialised ("auto", "ray://..."); default a local
             Ray with ``num_cpus`` CPUs (default all), shut down again at the end.
    frames_per_task: frames of work per Ray task (parts are never split).
    Returns an :class:`ExportSummary`. Bad input raises ValueError / FileNotFoundError naming it.
    """
    start = time.monotonic()
    if format == "coco":
        return _export_coco(output, dest, storage_options, start, **options)
    fmt = make_format(format, **options)
    from pipeline import read_frames

    frames = read_frames(output, columns=["source_id", "source_uri", "frame_index"], storage_options=storage_options)
    if len(frames) == 0:
        _require_output(output, storage_options)
    uris = dict(zip(frames["source_id"], frames["source_uri"]))
    counts = frames.groupby("source_id").size().to_dict()
    stems = export_stems(uris)
    parts = {sid: [sid] for sid in sorted(counts)} if fmt.per_source else fmt.parts(counts)
    tasks = _group(parts, counts, frames_per_task)
    results = _run_tasks(tasks, output, dest, fmt, stems, storage_options, ray_address, num_cpus)
    _remove_stale_parts(dest, set(parts), storage_options)
    written = [r for r in results if r["written"]]
    return ExportSummary(fmt.name, dest, len(results), len(written), len(results) - len(written),
                         sum(r["files"] for r in written), len(counts), int(len(frames)),
                         time.monotonic() - start)


def export_parts(output: str, dest: str, fmt, parts: Sequence[tuple[str, list[str]]], stems: Mapping[str, str],
                 storage_options: Mapping[str, Any] | None = None) -> list[dict]:
    """Export ``parts`` [(part id, its source ids)] of ``output`` to ``dest`` (what one Ray task runs).

    Returns per part {"part", "written": False if found complete, "files": files written}.
    """
    fs, root = storage.filesystem(storage.absolute_uri(dest), storage_options)
    rows = read_sources(output, [s for _, sids in parts for s in sids], stems, storage_options)
    by_id = {r.source_id: r for r in rows}
    options = json.loads(json.dumps(asdict(fmt)))
    results = []
    for part_id, sids in parts:
        sources = [by_id[s] for s in sids]
        made_from = {s.source_id: s.digest() for s in sources}
        record_path = storage.join(root, RECORD_FOLDER, f"{part_id}.json")
        old = _read_record(fs, record_path)
        if old and old.get("format") == fmt.name and old.get("options") == options \
                and old.get("sources") == made_from:
            results.append({"part": part_id, "written": False, "files": 0})
            continue
        files = []
        for rel, data in fmt.files(sources, part_id, storage_options):
            storage.write_bytes_atomic(fs, storage.join(root, rel), data)
            files.append(rel)
        for stale in sorted(set(old.get("files", [])) - set(files)) if old else ():
            storage.remove_if_exists(fs, storage.join(root, stale))
        record = {"format": fmt.name, "options": options, "sources": made_from, "files": files}
        storage.write_bytes_atomic(fs, record_path, json.dumps(record, indent=1).encode())
        results.append({"part": part_id, "written": True, "files": len(files)})
    return results


def _remove_stale_parts(dest: str, current: set[str], storage_options) -> None:
    """Remove the files and records of parts an earlier export wrote to ``dest`` that this one has not
    (a source gone from the job output, another hf-dataset file count)."""
    fs, root = storage.filesystem(storage.absolute_uri(dest), storage_options)
    folder = storage.join(root, RECORD_FOLDER)
    if not fs.exists(folder):
        return
    for path in fs.ls(folder, detail=False):
        name = path.rstrip("/").rsplit("/", 1)[-1]
        if not name.endswith(".json") or name[:-len(".json")] in current:
            continue
        for stale in (_read_record(fs, path) or {}).get("files", []):
            storage.remove_if_exists(fs, storage.join(root, stale))
        storage.remove_if_exists(fs, path)


def _group(parts: Mapping[str, list[str]], counts: Mapping[str, int], frames_per_task: int):
    """Parts packed in order into tasks of about ``frames_per_task`` frames."""
    tasks, current, size = [], [], 0
    for part_id, sids in parts.items():
        current.append((part_id, sids))
        size += sum(counts[s] for s in sids)
        if size >= frames_per_task:
            tasks.append(current)
            current, size = [], 0
    if current:
        tasks.append(current)
    return tasks


def _run_tasks(tasks, output, dest, fmt, stems, storage_options, ray_address, num_cpus) -> list[dict]:
    import ray

    started = not ray.is_initialized()
    if started:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        if ray_address:
            ray.init(address=ray_address, log_to_driver=False, configure_logging=False)
        else:
            ray.init(num_cpus=num_cpus or os.cpu_count() or 1, include_dashboard=False,
                     log_to_driver=False, configure_logging=False)
    try:
        remote = ray.remote(num_cpus=1, max_retries=2)(export_parts)
        out_uri, dest_uri = storage.absolute_uri(output), storage.absolute_uri(dest)
        refs = [remote.remote(out_uri, dest_uri, fmt, task, {s: stems[s] for _, sids in task for s in sids},
                              storage_options) for task in tasks]
        return [r for batch in ray.get(refs) for r in batch]
    finally:
        if started:
            ray.shutdown()


def _read_record(fs, path: str) -> dict | None:
    try:
        with fs.open(path, "rb") as f:
            return json.loads(f.read())
    except FileNotFoundError:
        return None
    except json.JSONDecodeError:
        return None  # an unreadable record: the part is redone


def _require_output(output: str, storage_options) -> None:
    fs, path = storage.filesystem(storage.absolute_uri(output), storage_options)
    if not fs.exists(storage.join(path, "frames")):
        raise FileNotFoundError(f"no frames table under {output}; pass the --output folder of a posepipe run")


def _export_coco(output: str, dest: str, storage_options, start: float, annotations: str | None = None,
                 **unknown: Any) -> ExportSummary:
    """The "coco" format: pipeline.evaluation.coco_format.export_coco's results list as one JSON file."""
    if unknown:
        raise ValueError(f"coco: unknown option(s) {', '.join(sorted(unknown))}; it takes annotations")
    from pipeline import read_poses
    from pipeline.evaluation.coco_format import export_coco, image_ids_from_annotations

    _require_output(output, storage_options)
    poses = read_poses(output, storage_options=storage_options)
    results = export_coco(poses, image_ids_from_annotations(annotations) if annotations else None)
    fs, path = storage.filesystem(storage.absolute_uri(dest), storage_options)
    storage.write_bytes_atomic(fs, path, json.dumps(results).encode())
    return ExportSummary("coco", dest, 1, 1, 0, 1, int(poses["source_id"].nunique()), 0, time.monotonic() - start)
