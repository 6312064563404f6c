"""``posepipe compact`` / ``vacuum`` / ``verify``: maintenance of a job output's Delta tables."""
from __future__ import annotations

import argparse
import json
import sys


def _sink(args: argparse.Namespace):
    from pipeline.job.sink import DeltaSink
    from pipeline.storage import absolute_uri

    options = dict(kv.split("=", 1) for kv in (args.storage_option or []))
    return DeltaSink(absolute_uri(args.output), options)


def _compact(args: argparse.Namespace) -> int:
    from pipeline.job.maintenance import compact, vacuum

    print(json.dumps({"compacted": compact(_sink(args)),
                      **({"vacuumed": vacuum(_sink(args), args.retention_hours)} if args.vacuum else {})}, indent=1))
    return 0


def _vacuum(args: argparse.Namespace) -> int:
    from pipeline.job.maintenance import vacuum

    print(json.dumps({"vacuumed": vacuum(_sink(args), args.retention_hours, dry_run=args.dry_run)}, indent=1))
    return 0


def _verify(args: argparse.Namespace) -> int:
    from pipeline.cli import EXIT_FAILED
    from pipeline.job.maintenance import verify

    problems = verify(_sink(args), repair=args.repair)
    for p in problems:
        print(f"posepipe verify: {p}", file=sys.stderr)
    if args.repair and problems:
        print(f"posepipe verify: repaired: {len(problems)} problem(s) dropped from the logs; run the job again "
              "to redo the shards concerned")
        return 0
    print(f"posepipe verify: {args.output}: " + ("ok" if not problems else f"{len(problems)} problem(s)"))
    return EXIT_FAILED if problems else 0


def add_commands(subparsers) -> None:
    """Add compact, vacuum and verify to an ``argparse`` sub-parsers object."""
    from pipeline.cli import reporting_errors
    from pipeline.job.maintenance import RETENTION_HOURS

    def common(p):
        p.add_argument("output", help="the job output (folder or URI)")
        p.add_argument("--storage-option", action="append", metavar="KEY=VALUE", help="fsspec option (repeatable)")

    p = subparsers.add_parser("compact", help="compact a job output's tables (files clustered by source)")
    common(p)
    p.add_argument("--vacuum", action="store_true", help="then delete replaced files past the retention")
    p.add_argument("--retention-hours", type=int, default=RETENTION_HOURS, help="keep replaced files this long")
    p.set_defaults(func=reporting_errors("compact", _compact))
    p = subparsers.add_parser("vacuum", help="delete files no recent snapshot of the output needs")
    common(p)
    p.add_argument("--retention-hours", type=int, default=RETENTION_HOURS, help="keep replaced files this long")
    p.add_argument("--dry-run", action="store_true", help="only list what would be deleted")
    p.set_defaults(func=reporting_errors("vacuum", _vacuum))
    p = subparsers.add_parser("verify", help="check every committed file exists with the row counts of the log")
    common(p)
    p.add_argument("--repair", action="store_true",
                   help="drop missing files from the logs and mark their shards unfinished (a re-run redoes them)")
    p.set_defaults(func=reporting_errors("verify", _verify))
