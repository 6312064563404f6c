"""``posepipe export``: a job output in a downstream format (openpose-json, controlnet, hf-dataset, coco).

:func:`add_commands` registers the sub-command on the main CLI's subparsers; it sets
``func(args) -> int`` (exit status) as its default.
"""
from __future__ import annotations

import argparse

from pipeline.cli import reporting_errors
from pipeline.export.runner import ALL_FORMATS, export

#: Flags that are format options (each format refuses the ones it does not take, naming them).
_OPTIONS = ("layout", "keypoint_scale", "resolution", "text", "min_people", "min_visible", "num_files", "annotations")


def add_commands(subparsers) -> None:
    """Add ``export`` to an ``argparse`` sub-parsers object."""
    p = subparsers.add_parser(
        "export", help="write a job output in a downstream format (OpenPose JSON, ControlNet, HF dataset, COCO)",
        description="Export a posepipe job output. Parallel on Ray, resumable: a re-run skips what is complete "
                    "(DEST/_export/ records) and redoes what changed. See docs/export.md.")
    p.add_argument("--poses", required=True, help="the job output folder or URI (posepipe run --output)")
    p.add_argument("--format", required=True, choices=ALL_FORMATS)
    p.add_argument("--output", required=True, help="folder or URI to write (coco: a results .json file)")
    p.add_argument("--layout", choices=("coco18", "body25"), help="openpose-json: keypoint order (default coco18)")
    p.add_argument("--keypoint-scale", choices=("pixels", "unit", "signed-unit"),
                   help="openpose-json: OpenPose --keypoint_scale 0 (pixels, default), 3 ([0, 1]) or 4 ([-1, 1])")
    p.add_argument("--resolution", type=int, help="controlnet, hf-dataset: short side in px (sides rounded to "
                                                  "multiples of 64, as controlnet_aux); default each frame's size")
    p.add_argument("--text", help="hf-dataset: caption template with {num_people}, {name}, {frame_index}")
    p.add_argument("--min-people", type=int, help="hf-dataset: keep frames with at least this many people ...")
    p.add_argument("--min-visible", type=float, help="hf-dataset: ... who each have this fraction of their 18 "
                                                     "keypoints found (default 0)")
    p.add_argument("--num-files", type=int, help="hf-dataset: Parquet files (default one per 1000 frames)")
    p.add_argument("--annotations", help="coco: annotation JSON whose images[].file_name give the image ids")
    p.add_argument("--ray-address", help='Ray cluster to join ("auto", "ray://host:10001"); default: local Ray')
    p.add_argument("--num-cpus", type=int, help="CPUs of the local Ray (default: all)")
    p.add_argument("--storage-option", type=_storage_option, action="append", default=[], metavar="NAME=VALUE",
                   help="fsspec option for remote locations (e.g. endpoint_url=http://...), repeatable")
    p.set_defaults(func=reporting_errors("export", _export))


def _storage_option(text: str):
    """"name=value" -> (name, YAML-parsed value), parsed as ``posepipe run --storage-option`` does."""
    from pipeline.job.spec import _key_value

    return _key_value(text)


def _export(args: argparse.Namespace) -> int:
    options = {k: getattr(args, k) for k in _OPTIONS if getattr(args, k) is not None}
    summary = export(args.poses, args.format, args.output, storage_options=dict(args.storage_option) or None,
                     ray_address=args.ray_address, num_cpus=args.num_cpus, **options)
    print(f"posepipe export: {summary.format} -> {summary.dest}: {summary.parts_written} part(s) written "
          f"({summary.files_written} files), {summary.parts_skipped} already complete, from {summary.sources} "
          f"sources / {summary.frames} frames in {summary.elapsed_s:.1f} s")
    return 0
