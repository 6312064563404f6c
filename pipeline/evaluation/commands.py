"""``posepipe export-coco | import-coco | eval``: COCO keypoint JSON in and out, and COCO AP.

:func:`add_commands` registers the sub-commands on the main CLI's subparsers; each sets
``func(args) -> int`` (exit status) as its default.
"""
from __future__ import annotations

import argparse
import json

from pipeline.cli import reporting_errors
from pipeline.evaluation.coco_eval import evaluate
from pipeline.evaluation.coco_format import export_coco, image_ids_from_annotations, import_coco
from pipeline.evaluation.poses_table import read_poses_file


def add_commands(subparsers) -> None:
    """Add export-coco, import-coco and eval to an ``argparse`` sub-parsers object."""
    p = subparsers.add_parser("export-coco", help="write a poses table as COCO keypoint results JSON",
                              description="Write a poses table as COCO keypoint results (COCO-17).")
    p.add_argument("--poses", required=True, help="poses table: a job output URI or a .parquet file")
    p.add_argument("--output", required=True, help="results JSON path or URI to write")
    p.add_argument("--annotations", help="COCO annotation JSON; image ids come from images[].file_name "
                                         "(default: the numeric file stem, as in COCO file names)")
    p.set_defaults(func=reporting_errors("export-coco", _export))

    p = subparsers.add_parser("import-coco", help="read COCO keypoint JSON into a poses table",
                              description="Convert COCO ground truth or another tool's results to the poses schema.")
    p.add_argument("--input", required=True, help="person_keypoints JSON or results JSON")
    p.add_argument("--output", required=True, help=".parquet file (path or URI) to write")
    p.add_argument("--annotations", help="annotation JSON a results file refers to (for image file names)")
    p.add_argument("--image-root", help="folder prefixed to images[].file_name in source_uri "
                                        "(default: the annotation file's folder)")
    p.set_defaults(func=reporting_errors("import-coco", _import))

    p = subparsers.add_parser("eval", help="COCO keypoint AP of a poses table",
                              description="Score a poses table (or results JSON) with pycocotools COCOeval.")
    p.add_argument("--poses", required=True, help="poses table (job output URI or .parquet) or results .json")
    p.add_argument("--annotations", required=True, help="COCO person_keypoints JSON (ground truth)")
    p.add_argument("--json", dest="json_out",
                   help="also write the metrics and per-image breakdown as JSON to this path or URI ('-': stdout)")
    p.set_defaults(func=reporting_errors("eval", _eval))


def _export(args: argparse.Namespace) -> int:
    ids = image_ids_from_annotations(args.annotations) if args.annotations else None
    results = export_coco(read_poses_file(args.poses), ids)
    _write_text(args.output, json.dumps(results))
    print(f"wrote {len(results)} people to {args.output}")
    return 0


def _import(args: argparse.Namespace) -> int:
    df = import_coco(args.input, args.annotations, image_root=args.image_root, output_uri=args.output)
    print(f"wrote {len(df)} people from {df['source_uri'].nunique()} images to {args.output}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    results = args.poses if args.poses.endswith(".json") else read_poses_file(args.poses)
    res = evaluate(results, args.annotations)
    print(res.table())
    if args.json_out == "-":
        print(res.to_json())
    elif args.json_out:
        _write_text(args.json_out, res.to_json())
    return 0


def _write_text(uri: str, text: str) -> None:
    from pipeline import storage

    fs, path = storage.filesystem(storage.absolute_uri(uri))
    storage.write_bytes_atomic(fs, path, text.encode())
