"""``posepipe submit | status | logs``: run job specs on a Ray cluster through its Jobs API.

``pipeline.cli`` calls :func:`add_commands` with its sub-parsers. Each command sets ``func`` to a
handler taking the parsed namespace and returning the process exit code:
0 = done / job SUCCEEDED, 1 = job FAILED or STOPPED, 2 = bad input or unreachable cluster,
3 = ``--wait``/``--follow`` timed out (the job keeps running).
"""
from __future__ import annotations

import datetime as dt
import json
import os
import sys

from pipeline.cluster import jobs_api
from pipeline.cluster.submission import DEFAULT_ENV_PASSTHROUGH, SubmissionError, build_submission, parse_env_args

EXIT_OK, EXIT_JOB_FAILED, EXIT_BAD_INPUT, EXIT_TIMEOUT = 0, 1, 2, 3


def add_commands(subparsers) -> None:
    """Register ``submit``, ``status`` and ``logs`` on an argparse ``add_subparsers()`` object."""
    address_help = "Ray Jobs API of the cluster head, e.g. http://HEAD:8265 (default: $RAY_ADDRESS)"

    p = subparsers.add_parser("submit", help="run a job spec on a Ray cluster (Ray Jobs API)",
                              description="Validate a job spec here, then run it on the cluster.")
    p.add_argument("spec", help="job spec YAML (e.g. jobs/s3-images.yaml); inputs/output must be URIs")
    p.add_argument("--address", default=None, help=address_help)
    p.add_argument("--wait", action="store_true", help="stream the job's logs until it ends; exit 0 only if it succeeded")
    p.add_argument("--timeout", type=float, default=None, help="seconds --wait waits before giving up (exit 3)")
    p.add_argument("--env", action="append", default=[], metavar="NAME[=VALUE]",
                   help="environment variable for the driver and workers; bare NAME copies this shell's "
                        f"value (always passed when set: {', '.join(DEFAULT_ENV_PASSTHROUGH)})")
    p.add_argument("--no-ship-code", dest="ship_code", action="store_false",
                   help="run the posepipe installed on the nodes instead of uploading this checkout's package")
    p.add_argument("--allow-local-paths", action="store_true",
                   help="accept local input/output paths (only if every node mounts them)")
    p.add_argument("--submission-id", default=None, help="job id to use (default: posepipe-<spec>-<time>-<hex>)")
    p.set_defaults(func=_submit)

    p = subparsers.add_parser("status", help="status of a cluster job")
    p.add_argument("job_id")
    p.add_argument("--address", default=None, help=address_help)
    p.add_argument("--json", action="store_true", help="print the details as JSON")
    p.set_defaults(func=_status)

    p = subparsers.add_parser("logs", help="output of a cluster job's driver")
    p.add_argument("job_id")
    p.add_argument("--address", default=None, help=address_help)
    p.add_argument("--follow", action="store_true", help="keep streaming until the job ends")
    p.add_argument("--timeout", type=float, default=None, help="seconds --follow streams before giving up (exit 3)")
    p.set_defaults(func=_logs)


def _address(args) -> str:
    address = args.address or os.environ.get("RAY_ADDRESS")
    if not address:
        raise jobs_api.ClusterError("no cluster address: pass --address http://HEAD:8265 or set RAY_ADDRESS")
    return address


def _fail(msg: str) -> int:
    print(f"posepipe: error: {msg}", file=sys.stderr)
    return EXIT_BAD_INPUT


def _submit(args) -> int:
    from pipeline.job.spec import SpecError

    try:
        submission = build_submission(args.spec, env=parse_env_args(args.env), ship_code=args.ship_code,
                                      allow_local_paths=args.allow_local_paths,
                                      submission_id=args.submission_id)
        try:
            client = jobs_api.connect(_address(args))
        except jobs_api.ClusterError:
            submission.discard()
            raise
        job_id = jobs_api.submit(client, submission)
    except (SubmissionError, SpecError, jobs_api.ClusterError) as exc:
        return _fail(str(exc))
    print(job_id)
    sys.stdout.flush()
    if not args.wait:
        print(f"follow it with: posepipe logs {job_id} --address {args.address or '$RAY_ADDRESS'} --follow",
              file=sys.stderr)
        return EXIT_OK
    try:
        jobs_api.follow_logs(client, job_id, out=sys.stdout, timeout_s=args.timeout)
    except TimeoutError:
        print(f"posepipe: job {job_id} still running after {args.timeout:.0f} s", file=sys.stderr)
        return EXIT_TIMEOUT
    # The log stream closes when the driver exits; the status settles a moment later.
    status = jobs_api.wait(client, job_id, timeout_s=60)
    print(f"job {job_id}: {status}", file=sys.stderr)
    return EXIT_OK if status == "SUCCEEDED" else EXIT_JOB_FAILED


def _when(t: float | None) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC") if t else "-"


def _status(args) -> int:
    try:
        info = jobs_api.job_info(jobs_api.connect(_address(args)), args.job_id)
    except jobs_api.ClusterError as exc:
        return _fail(str(exc))
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print(f"job:        {info['job_id']}\nstatus:     {info['status']}\nmessage:    {info['message']}\n"
              f"started:    {_when(info['start_time'])}\nended:      {_when(info['end_time'])}\n"
              f"entrypoint: {info['entrypoint']}")
        for k, v in sorted(info["metadata"].items()):
            print(f"{k}: {v}")
    return EXIT_OK


def _logs(args) -> int:
    try:
        client = jobs_api.connect(_address(args))
        if args.follow:
            jobs_api.follow_logs(client, args.job_id, out=sys.stdout, timeout_s=args.timeout)
        else:
            sys.stdout.write(jobs_api.logs(client, args.job_id))
    except jobs_api.ClusterError as exc:
        return _fail(str(exc))
    except TimeoutError:
        print(f"posepipe: stopped following {args.job_id} after {args.timeout:.0f} s", file=sys.stderr)
        return EXIT_TIMEOUT
    return EXIT_OK
