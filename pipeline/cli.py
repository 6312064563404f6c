"""``posepipe``: the command line. ``run`` is defined here; the other sub-commands come from the
``add_commands(subparsers)`` hooks of pipeline.video.commands (render), pipeline.evaluation.commands
(eval, export-coco, import-coco) and pipeline.cluster.commands (submit, status, logs).
Each sub-command sets ``func(args) -> int`` (the exit status, one of EXIT_CODES) and reports
problems as one line ``posepipe <command>: <message>`` on stderr (:func:`fail`), secrets masked.
"""
from __future__ import annotations

import argparse
import functools
import importlib
import sys
import traceback
from typing import Iterable, Sequence

from pipeline.secrets import mask_text

#: Modules whose ``add_commands(subparsers)`` adds sub-commands to ``posepipe``.
COMMAND_MODULES = ("pipeline.job.commands", "pipeline.video.commands", "pipeline.evaluation.commands",
                   "pipeline.cluster.commands",
                   "pipeline.export.commands")

EXIT_OK = 0          # done
EXIT_FAILED = 1      # the job or command failed (a cluster job FAILED or was STOPPED; an unexpected error)
EXIT_INVALID = 2     # invalid job spec, arguments or input file; cluster unreachable or refused the job
EXIT_INCOMPLETE = 3  # finished with work left: failed shards or pending inputs (re-run to retry them),
                     # or --wait/--follow gave up while the cluster job keeps running
EXIT_INTERRUPTED = 130  # stopped by Ctrl-C (SIGINT), as shells report it
#: Every exit status of every ``posepipe`` command and what it means (shown by ``posepipe --help``).
EXIT_CODES = {
    EXIT_OK: "done (a job that finished with errors rows for bad inputs is done)",
    EXIT_FAILED: "the job or command failed (the job stopped before finishing; a cluster job FAILED or "
                 "was STOPPED; an unexpected error)",
    EXIT_INVALID: "invalid job spec, arguments or input; the cluster is unreachable or refused the job",
    EXIT_INCOMPLETE: "finished with work left: failed shards or pending inputs (run it again to retry them), "
                     "or --wait/--follow gave up while the cluster job keeps running",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C): what was committed stays; run the same command again to go on",
}


def fail(command: str, message: str, status: int = EXIT_INVALID, secrets: Iterable[str] = ()) -> int:
    """Print ``posepipe <command>: <message>`` (secrets and URL passwords masked) on stderr; return ``status``."""
    print(f"posepipe {command}: {mask_text(str(message), secrets)}", file=sys.stderr)
    return status


def reporting_errors(command: str, handler):
    """``handler`` with bad-input errors (ValueError, FileNotFoundError) reported by :func:`fail`
    (exit status 2), for the sub-commands' ``func``."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except (ValueError, FileNotFoundError) as e:
            return fail(command, str(e))

    return run


def _add_run(subparsers) -> None:
    from pipeline.job.spec import add_arguments

    p = subparsers.add_parser(
        "run", help="label images and videos with poses (Parquet tables out)",
        description="Label images and videos with multi-person poses. Settings come from --config "
                    "(YAML job spec) and are overridden by flags; relative paths are resolved against "
                    "the current directory. Every setting: docs/job.md.",
        epilog=exit_codes_text(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="job spec YAML, e.g. jobs/sample-media.yaml")
    add_arguments(p)
    p.set_defaults(func=_run)


def exit_codes_text() -> str:
    """The exit statuses as help text ("exit status:" and one line per code)."""
    return "exit status:\n" + "\n".join(f"  {code}  {text}" for code, text in EXIT_CODES.items())


def job_exit_status(summary) -> int:
    """EXIT_INCOMPLETE when a finished job left failed shards or pending inputs (``summary.pending``,
    0 when the summary has no such field), else EXIT_OK."""
    return EXIT_INCOMPLETE if summary.shards_failed or getattr(summary, "pending", 0) else EXIT_OK


def print_report(output: str, summary, storage_options=None, stream=None) -> None:
    """Print where the tables went and a short summary (people per source, pending inputs, errors),
    from the run's summary (the shard_log aggregates) and the errors table -- never the data tables."""
    import pandas as pd

    from pipeline.job.read import read_errors

    stream = stream or sys.stdout
    errors = read_errors(output, columns=["input", "stage", "retryable", "message"], storage_options=storage_options)
    w = stream.write
    pending = getattr(summary, "pending", 0)
    w(f"\nposepipe: {summary.status}: {summary.frames} frames, {summary.people} people, {summary.errors} errors "
      f"in {summary.shards_total} shards ({summary.shards_skipped} already done, {summary.shards_failed} failed); "
      f"{summary.elapsed_s:.1f} s, {summary.frames_per_s:.2f} frames/s this run\n")
    if pending:
        w(f"pending:  {pending} input(s) failed in a way that may be transient; run the same command again to "
          "retry them (errors table, retryable = true)\n")
    if getattr(summary, "last_write_error", None):
        w(f"writing:  {summary.unrecorded_errors} write(s) failed: {summary.last_write_error}\n")
    w(f"tables:   {output.rstrip('/')}/{{poses,frames,errors,tracks}}  (Delta Lake; summary: "
      f"{output.rstrip('/')}/_manifest.json)\n")
    w("read:     import pipeline; df = pipeline.read_poses(%r)\n" % output)
    q = summary.quality
    if q and q["frames"]:
        kp = "n/a" if q["keypoint_score_mean"] is None else f"{q['keypoint_score_mean']:.2f}"
        w(f"quality:  {q['people_per_frame_mean']:.2f} people/frame (median {q['people_per_frame_median']:g}), "
          f"{100 * q['empty_frame_share']:.0f}% of frames with nobody, mean keypoint score {kp} "
          f"(per source: _manifest.json summary.quality)\n")
    per_source = (q or {}).get("per_source") or {}
    if per_source:
        per = pd.DataFrame({"frames": {u.rsplit("/", 1)[-1]: f["frames"] for u, f in per_source.items()},
                            "people": {u.rsplit("/", 1)[-1]: f["people"] for u, f in per_source.items()}})
        with pd.option_context("display.max_rows", 30, "display.width", 120):
            w("\n" + per.to_string() + "\n")
    if len(errors):
        w(f"\nerrors ({len(errors)}):\n")
        for row in errors.head(10).itertuples():
            w(f"  [{row.stage}{', retryable' if row.retryable else ''}] {row.message}\n")
        if len(errors) > 10:
            w(f"  ... {len(errors) - 10} more: pipeline.read_errors({output!r})\n")
    stream.flush()


def _run(args: argparse.Namespace) -> int:
    from pipeline.job.spec import SpecError, file_settings, load_spec, overrides_from_args
    from pipeline.secrets import secret_values

    in_file = file_settings(args.config)
    overrides = overrides_from_args(args, in_file)
    secrets = secret_values(in_file) | secret_values(overrides)
    try:
        spec = load_spec(args.config, overrides)
    except SpecError as exc:
        return fail("run", f"invalid job spec: {exc}", EXIT_INVALID, secrets)
    from pipeline.job.execute import JobError, run_job

    try:
        summary = run_job(spec)
    except JobError as exc:
        return fail("run", str(exc), EXIT_FAILED, secrets)
    except Exception:  # noqa: BLE001 - an unexpected failure: its traceback, masked, then exit 1
        sys.stderr.write(mask_text(traceback.format_exc(), secrets))
        return fail("run", "the job failed with the error above", EXIT_FAILED)
    print_report(spec.output, summary, dict(spec.storage_options))
    return job_exit_status(summary)


def build_parser() -> argparse.ArgumentParser:
    """The ``posepipe`` argument parser with every sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="posepipe", description="Multi-person 2D pose labelling of images and videos with Part Affinity "
                                     "Fields, on Ray. `posepipe run --config jobs/sample-media.yaml` to start.",
        epilog=exit_codes_text() + "\n\nerrors are reported as one line: posepipe <command>: <message>",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_run(sub)
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``posepipe`` script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return fail(args.command, "interrupted: the shards committed so far stay in the tables; run the same "
                                  "command again to go on from there", EXIT_INTERRUPTED)
    except Exception:  # noqa: BLE001 - one error style; the traceback (URL passwords masked) stays visible
        sys.stderr.write(mask_text(traceback.format_exc()))
        return fail(args.command, "failed with the error above", EXIT_FAILED)


if __name__ == "__main__":
    sys.exit(main())
