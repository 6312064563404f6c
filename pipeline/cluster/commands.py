"""``posepipe submit | status | logs``: run job specs on a Ray cluster through its Jobs API.

``pipeline.cli`` calls :func:`add_commands` with its sub-parsers. Each command sets ``func`` to a
handler taking the parsed namespace and returning the exit status (pipeline.cli.EXIT_CODES):
0 = done / job SUCCEEDED, 1 = job FAILED or STOPPED, 2 = bad input or unreachable cluster,
3 = ``--wait``/``--follow`` gave up (the job keeps running).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys

from pipeline.cli import EXIT_FAILED, EXIT_INCOMPLETE, EXIT_INVALID, EXIT_OK, exit_codes_text, fail
from pipeline.cluster import jobs_api
from pipeline.cluster.submission import DEFAULT_ENV_PASSTHROUGH, SubmissionError, build_submission, parse_env_args


def add_commands(subparsers) -> None:
    """Register ``submit``, ``status`` and ``logs`` on an argparse ``add_subparsers()`` object."""
    from pipeline.job.spec import add_arguments

    address_help = "Ray Jobs API of the cluster head, e.g. http://HEAD:8265 (default: $RAY_ADDRESS)"
    formatting = {"epilog": exit_codes_text(), "formatter_class": argparse.RawDescriptionHelpFormatter}

    p = subparsers.add_parser("submit", help="run a job spec on a Ray cluster (Ray Jobs API)",
                              description="Validate a job spec here, then run it on the cluster. Flags override "
                                          "the spec as for `posepipe run`; credentials are never sent (the "
                                          "nodes use their own, see docs/cluster.md).", **formatting)
    p.add_argument("spec", nargs="?", default=None, help="job spec YAML (same as --config)")
    p.add_argument("--config", default=None, help="job spec YAML (e.g. jobs/s3-images.yaml); inputs/output must be URIs")
    p.add_argument("--address", default=None, help=address_help)
    p.add_argument("--wait", action="store_true", help="stream the job's logs until it ends; exit 0 only if it succeeded")
    p.add_argument("--timeout", type=float, default=None, help="seconds --wait waits before giving up (exit 3)")
    p.add_argument("--env", action="append", default=[], metavar="NAME[=VALUE]",
                   help="environment variable for the driver and workers (never a credential); bare NAME copies "
                        f"this shell's value (always passed when set: {', '.join(DEFAULT_ENV_PASSTHROUGH)})")
    p.add_argument("--no-ship-code", dest="ship_code", action="store_false",
                   help="run the posepipe installed on the nodes instead of uploading this checkout's package")
    p.add_argument("--allow-local-paths", action="store_true",
                   help="accept local input/output paths (only if every node mounts them)")
    p.add_argument("--submission-id", default=None, help="job id to use (default: posepipe-<spec>-<time>-<hex>)")
    add_arguments(p, exclude=("ray_address",))  # the driver always joins the cluster it runs on
    p.set_defaults(func=_submit)

    p = subparsers.add_parser("status", help="status of a cluster job", **formatting)
    p.add_argument("job_id")
    p.add_argument("--address", default=None, help=address_help)
    p.add_argument("--json", action="store_true", help="print the details as JSON")
    p.set_defaults(func=_status)

    p = subparsers.add_parser("logs", help="output of a cluster job's driver", **formatting)
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


def _spec_path(args) -> str:
    """The job spec file from ``--config`` or the positional SPEC (the same file if both are given)."""
    if args.spec and args.config and os.path.abspath(args.spec) != os.path.abspath(args.config):
        raise SubmissionError(f"two job specs given ({args.spec} and --config {args.config}); give one")
    path = args.config or args.spec
    if not path:
        raise SubmissionError("no job spec: give --config SPEC.yaml (e.g. jobs/s3-images.yaml)")
    return path


def _submit(args) -> int:
    from pipeline.job.spec import SpecError, file_settings, overrides_from_args
    from pipeline.secrets import secret_values

    secrets: set[str] = set()
    try:
        path = _spec_path(args)
        in_file = file_settings(path)
        overrides = overrides_from_args(args, in_file)
        secrets = secret_values(in_file) | secret_values(overrides)
        submission = build_submission(path, overrides=overrides, env=parse_env_args(args.env),
                                      ship_code=args.ship_code, allow_local_paths=args.allow_local_paths,
                                      submission_id=args.submission_id)
        if submission.stripped:
            print(f"posepipe submit: not sent to the cluster (its nodes use their own credentials): "
                  f"{', '.join(submission.stripped)}", file=sys.stderr)
        try:
            client = jobs_api.connect(_address(args))
        except jobs_api.ClusterError:
            submission.discard()
            raise
        job_id = jobs_api.submit(client, submission)
    except (SubmissionError, SpecError, jobs_api.ClusterError) as exc:
        return fail("submit", str(exc), EXIT_INVALID, secrets)
    print(job_id)
    sys.stdout.flush()
    if not args.wait:
        print(f"follow it with: posepipe logs {job_id} --address {args.address or '$RAY_ADDRESS'} --follow",
              file=sys.stderr)
        return EXIT_OK
    try:
        jobs_api.follow_logs(client, job_id, out=sys.stdout, timeout_s=args.timeout)
    except TimeoutError:
        return fail("submit", f"job {job_id} still running after {args.timeout:.0f} s", EXIT_INCOMPLETE)
    # The log stream closes when the driver exits; the status settles a moment later.
    status = jobs_api.wait(client, job_id, timeout_s=60)
    print(f"job {job_id}: {status}", file=sys.stderr)
    return EXIT_OK if status == "SUCCEEDED" else EXIT_FAILED


def _when(t: float | None) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC") if t else "-"


def _status(args) -> int:
    try:
        info = jobs_api.job_info(jobs_api.connect(_address(args)), args.job_id)
    except jobs_api.ClusterError as exc:
        return fail("status", str(exc))
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
        return fail("logs", str(exc))
    except TimeoutError:
        return fail("logs", f"stopped following {args.job_id} after {args.timeout:.0f} s", EXIT_INCOMPLETE)
    return EXIT_OK
