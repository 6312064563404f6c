"""``posepipe``: the command line. ``run`` is defined here; the other sub-commands come from the
``add_commands(subparsers)`` hooks of pipeline.video.commands (render), pipeline.evaluation.commands
(eval, export-coco, import-coco) and pipeline.cluster.cli (submit, status, logs).
Each sub-command sets ``func(args) -> int`` (the exit status).
"""
from __future__ import annotations

import argparse
import functools
import importlib
import sys
from typing import Any, Sequence

#: Modules whose ``add_commands(subparsers)`` adds sub-commands to ``posepipe``.
COMMAND_MODULES = ("pipeline.video.commands", "pipeline.evaluation.commands", "pipeline.cluster.cli")


def reporting_errors(command: str, handler):
    """``handler`` with bad-input errors (ValueError, FileNotFoundError) printed as one line on stderr
    and exit status 2, for the sub-commands' ``func``."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except (ValueError, FileNotFoundError) as e:
            print(f"{command}: {e}", file=sys.stderr)
            return 2

    return run


def _key_value(text: str) -> tuple[str, Any]:
    """"name=value" -> (name, YAML-parsed value), for --parse and --storage-option."""
    import yaml

    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    k, v = text.split("=", 1)
    return k.strip(), yaml.safe_load(v)


def _add_run(subparsers) -> None:
    p = subparsers.add_parser(
        "run", help="label images and videos with poses (Parquet tables out)",
        description="Label images and videos with multi-person poses. Settings come from --config "
                    "(YAML job spec) and are overridden by flags; relative paths are resolved against "
                    "the current directory.")
    p.add_argument("--config", help="job spec YAML, e.g. jobs/sample-media.yaml")
    p.add_argument("--input", nargs="+", help="paths, folders, globs or URIs (s3://bucket/prefix), images and videos")
    p.add_argument("--output", help="folder or URI for the tables and manifest")
    p.add_argument("--model", help="network name from the registry (default omz-lightweight)")
    p.add_argument("--model-dir", help="folder holding the weights (default $POSEPIPE_MODEL_DIR)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"))
    p.add_argument("--precision", choices=("fp32", "fp16", "bf16"))
    p.add_argument("--batch-size", type=int)
    p.add_argument("--scales", type=float, nargs="+")
    p.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--images-per-shard", type=int)
    p.add_argument("--frames-per-shard", type=int)
    p.add_argument("--frame-step", type=int, help="label every n-th video frame")
    p.add_argument("--tracking", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--pool-size", type=int, help="network actors (default: one per GPU; on CPU, 2-CPU actors filling 3/4 of the CPUs)")
    p.add_argument("--cpus-per-actor", type=float)
    p.add_argument("--max-in-flight", type=int, help="shards in flight at once (bounds memory)")
    p.add_argument("--shard-retries", type=int)
    p.add_argument("--ray-address", help='Ray cluster to join ("auto", "ray://host:10001"); default: local Ray')
    p.add_argument("--num-cpus", type=int, help="CPUs of the local Ray (default: all)")
    p.add_argument("--parse", type=_key_value, action="append", default=[], metavar="NAME=VALUE",
                   help="parser setting (pipeline.parsing.ParseConfig field), repeatable")
    p.add_argument("--storage-option", type=_key_value, action="append", default=[], metavar="NAME=VALUE",
                   help="fsspec option for remote locations (e.g. endpoint_url=http://...), repeatable")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None)
    p.set_defaults(func=_run)


def _overrides(args: argparse.Namespace, base: dict) -> dict[str, Any]:
    keys = ("input", "output", "model", "model_dir", "device", "precision", "batch_size", "scales", "flip",
            "images_per_shard", "frames_per_shard", "frame_step", "tracking", "pool_size", "cpus_per_actor",
            "max_in_flight", "shard_retries", "ray_address", "num_cpus", "progress")
    out = {k: getattr(args, k) for k in keys}
    if args.parse:
        out["parse"] = {**base.get("parse", {}), **dict(args.parse)}
    if args.storage_option:
        out["storage_options"] = {**base.get("storage_options", {}), **dict(args.storage_option)}
    return out


def print_report(output: str, summary, storage_options=None, stream=None) -> None:
    """Print where the tables went and a short pandas summary (people per source, frames, errors)."""
    import pandas as pd

    from pipeline.job.read import read_errors, read_frames

    stream = stream or sys.stdout
    frames = read_frames(output, columns=["source_uri", "frame_index", "num_people"], storage_options=storage_options)
    errors = read_errors(output, columns=["input", "stage", "message"], storage_options=storage_options)
    w = stream.write
    w(f"\nposepipe: {summary.status}: {summary.frames} frames, {summary.people} people, {summary.errors} errors "
      f"in {summary.shards_total} shards ({summary.shards_skipped} already done, {summary.shards_failed} failed); "
      f"{summary.elapsed_s:.1f} s, {summary.frames_per_s:.2f} frames/s this run\n")
    w(f"tables:   {output.rstrip('/')}/{{poses,frames,errors,tracks}}  (manifest: {output.rstrip('/')}/_manifest.json)\n")
    w("read:     import pipeline; df = pipeline.read_poses(%r)\n" % output)
    q = summary.quality
    if q and q["frames"]:
        kp = "n/a" if q["keypoint_score_mean"] is None else f"{q['keypoint_score_mean']:.2f}"
        w(f"quality:  {q['people_per_frame_mean']:.2f} people/frame (median {q['people_per_frame_median']:g}), "
          f"{100 * q['empty_frame_share']:.0f}% of frames with nobody, mean keypoint score {kp} "
          f"(per source: _manifest.json summary.quality)\n")
    if len(frames):
        per = frames.groupby("source_uri").agg(frames=("frame_index", "size"), people=("num_people", "sum"))
        per.index = [u.rsplit("/", 1)[-1] for u in per.index]
        with pd.option_context("display.max_rows", 30, "display.width", 120):
            w("\n" + per.to_string() + "\n")
    if len(errors):
        w(f"\nerrors ({len(errors)}):\n")
        for row in errors.head(10).itertuples():
            w(f"  [{row.stage}] {row.message}\n")
        if len(errors) > 10:
            w(f"  ... {len(errors) - 10} more: pipeline.read_errors({output!r})\n")
    stream.flush()


def _run(args: argparse.Namespace) -> int:
    import yaml

    from pipeline.job.spec import SpecError, load_spec

    base = {}
    if args.config:
        try:
            base = yaml.safe_load(open(args.config)) or {}
        except (OSError, yaml.YAMLError):
            base = {}  # load_spec reports the problem with the file's name
        base = base if isinstance(base, dict) else {}
    try:
        spec = load_spec(args.config, _overrides(args, base))
    except SpecError as exc:
        print(f"posepipe run: invalid job spec: {exc}", file=sys.stderr)
        return 2
    from pipeline.job.execute import JobError, run_job

    try:
        summary = run_job(spec)
    except JobError as exc:
        print(f"posepipe run: {exc}", file=sys.stderr)
        return 1
    print_report(spec.output, summary, dict(spec.storage_options))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``posepipe`` argument parser with every sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="posepipe", description="Multi-person 2D pose labelling of images and videos with Part Affinity "
                                     "Fields, on Ray. `posepipe run --config jobs/sample-media.yaml` to start.")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_run(sub)
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``posepipe`` script; returns the exit status."""
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
