"""Run a JobSpec: open output -> list and plan, page by page, while the shards run
(+ per-video tracking) -> summary.

Where the stages run is the executor's business: pipeline.job.ray_executor (Ray tasks and actors,
the in-process Ray or a cluster) or pipeline.job.inline_executor (threads of this process, for a
small local CPU job: no Ray start-up). Both run the same stages through the same ShardRunner.
Finished work is whatever the shard_log says is done, so a re-run, a killed run or a second
driver never duplicates or loses rows.
"""
from __future__ import annotations

import glob
import itertools
import os
import time
from typing import Any, Callable, Iterator, TextIO

from pipeline import tables
from pipeline.job.decode import ImageLimits
from pipeline.job.errors import JobError
from pipeline.job.leases import Leases
from pipeline.job.planner import Planner
from pipeline.job.progress import JobSummary, Progress
from pipeline.job.records import Shard
from pipeline.job.rows import RowContext, errors_table, shard_predicates
from pipeline.job.shard_runner import ShardWork, failed_shard_errors
from pipeline.job.sink import DeltaSink, OutputAccessError, OutputConflictError, quote
from pipeline.job.spec import INLINE_MAX_FRAMES, JobSpec
from pipeline.job.stages import default_preparer
from pipeline.job.summary import quality_from_log, totals_from_log, tracks_summary
from pipeline.job.track_task import stale_videos, track_source

__all__ = ["JobError", "run_job"]


def _model_id(spec: JobSpec) -> str:
    from pipeline.models import model_id

    return model_id(spec.model)


def _open_output(sink: DeltaSink, ctx: RowContext) -> None:
    try:
        sink.open(ctx.model_id, ctx.config_id)
    except (OutputAccessError, OutputConflictError) as exc:
        raise JobError(str(exc)) from exc


def _prune_removed(sink: DeltaSink, gone: list[str]) -> int:
    """Delete every row of the inputs ``gone`` (labelled before, no longer listed; see Planner.prunable)."""
    for i in range(0, len(gone), 500):
        chunk = ", ".join(quote(u) for u in gone[i:i + 500])
        for name, column in (("poses", "source_uri"), ("frames", "source_uri"), ("tracks", "source_uri"),
                             ("errors", "input"), ("shard_log", "source_uri")):
            sink.delete(name, f"{column} IN ({chunk})")
    return len(gone)


def run_job(spec: JobSpec, *, runner_factory: Callable[..., Any] | None = None, model_id: str | None = None,
            stream: TextIO | None = None) -> JobSummary:
    """Run ``spec`` to completion and return its summary (also written to ``_manifest.json``).

    runner_factory / model_id replace the registry network (tests and benchmarks use
    pipeline.testing.RenderedRunner); by default the runner is pipeline.models.inference.PoseNetRunner.
    Raises JobError when the job cannot start; per-input and per-shard failures go to ``errors``.
    The listing is planned page by page while the shards run (pipeline.job.planner).
    """
    t_start = time.monotonic()
    ctx = RowContext(model_id or _model_id(spec), spec.config_id())
    sink = DeltaSink(spec.output, spec.storage_options)
    _open_output(sink, ctx)
    summary = JobSummary(output=spec.output)
    executor = _executor(spec, inline=_may_run_inline(spec))
    tracker = _VideoTracker(spec, sink, ctx)
    planner = Planner(sink, spec, ctx, map_fn=lambda fn, items: executor.map(fn, items), on_planned=tracker.add)
    try:
        shards = planner.shards()
        if spec.executor == "auto" and executor.name == "inline":
            head, small = _head(shards, INLINE_MAX_FRAMES)
            if not small:  # too much work to do here: Ray's start-up pays off
                executor.close()
                executor = _executor(spec, inline=False)
        else:
            head = list(itertools.islice(shards, 1))
        tracker.executor, summary.executor = executor, executor.name
        totals = planner.totals
        if not head and not totals.sources and totals.errors and not any(
                e.error_type == "UnsupportedMediaError" for e in totals.errors):
            raise JobError("no input could be listed:\n  " + "\n  ".join(e.message for e in totals.errors))
        progress = Progress(summary, stream, enabled=spec.progress)
        tick = _Ticker(progress, summary, totals)
        if head:
            work = _shard_work(spec, sink, ctx, runner_factory, summary, tick, tracker)
            executor.run_shards(work, itertools.chain(head, shards))
        tick.sync()
        tracker.track_stale()
        summary.tracking_failed = tracker.wait()
        progress.close()
        job_errors = totals.errors + totals.plan_errors
        _best_effort(summary, lambda: sink.replace("errors", errors_table(job_errors),
                                                   "shard_id IS NULL AND stage <> 'track'"))
        summary.pruned_sources = _best_effort(summary, lambda: _prune_removed(sink, planner.prunable())) or 0
        return _finish(spec, sink, ctx, summary, t_start, len(job_errors))
    finally:
        executor.close()


def _executor(spec: JobSpec, inline: bool):
    """A new InlineExecutor or RayExecutor (each module imported only when chosen: Ray's import costs)."""
    if inline:
        from pipeline.job.inline_executor import InlineExecutor

        return InlineExecutor(spec)
    from pipeline.job.ray_executor import RayExecutor

    return RayExecutor(spec)


def _may_run_inline(spec: JobSpec) -> bool:
    """Whether the job may run inline: asked for, or (auto) a local job on a machine without GPUs
    or with device cpu; auto then also needs little work (see run_job)."""
    if spec.executor != "auto":
        return spec.executor == "inline"
    if spec.ray_address or spec.device == "cuda":
        return False
    return spec.device == "cpu" or not _gpus_visible()


def _gpus_visible() -> bool:
    """An NVIDIA GPU this process may use (its device node, and not hidden by CUDA_VISIBLE_DEVICES),
    found without importing torch or Ray."""
    return bool(glob.glob("/dev/nvidia[0-9]*")) and os.environ.get("CUDA_VISIBLE_DEVICES", "x").strip() not in ("", "-1")


def _head(shards: Iterator[Shard], max_frames: int) -> tuple[list[Shard], bool]:
    """(the first shards of ``shards``, whether they are all of them and hold at most ``max_frames``
    frames): pulls shards until the frames pass ``max_frames`` or the plan ends."""
    head, frames = [], 0
    for shard in shards:
        head.append(shard)
        frames += len(shard.frames) if shard.frames is not None else len(shard.sources)
        if frames > max_frames:
            return head, False
    return head, True


class _Ticker:
    """The runner's tick: the shard totals planned so far into the summary, then a progress line."""

    def __init__(self, progress: Progress, summary: JobSummary, totals):
        self.progress, self.summary, self.totals = progress, summary, totals

    def sync(self) -> None:
        self.summary.shards_skipped = self.totals.shards_skipped
        self.summary.shards_total = self.totals.shards_skipped + self.totals.shards_planned

    def __call__(self) -> None:
        self.sync()
        self.progress.update()


def _best_effort(summary: JobSummary, write: Callable[[], Any]) -> Any:
    """``write()``, or None when it fails (disk full, access refused mid-job...): the failure is
    counted in the summary (unrecorded_errors, last_write_error) and the job goes on to its end."""
    try:
        return write()
    except Exception as exc:  # noqa: BLE001
        summary.unrecorded_errors += 1
        summary.last_write_error = f"{type(exc).__name__}: {exc}".splitlines()[0]
        return None


class _VideoTracker:
    """Starts a video's tracking task once all of its shards are committed (here or earlier), on
    ``executor`` (set once the job's executor is chosen)."""

    def __init__(self, spec: JobSpec, sink: DeltaSink, ctx: RowContext):
        self.enabled, self.sink, self.ctx, self.config = spec.tracking, sink, ctx, spec.track_config()
        self.executor: Any = None
        self.videos: dict[str, tuple[Any, list[str]]] = {}
        self.left: dict[str, set[str]] = {}
        self.handles: list = []

    def add(self, shards: list[Shard]) -> None:
        """Register planned shards (all of a video's shards come in one call)."""
        for s in shards:
            if s.kind == "video":
                self.videos.setdefault(s.sources[0].uri, (s.sources[0], []))[1].append(s.shard_id)
                self.left.setdefault(s.sources[0].uri, set()).add(s.shard_id)

    def _track(self, source) -> None:
        self.handles.append(self.executor.submit(track_source, self.sink, source, self.ctx, self.config))

    def shard_done(self, shard: Shard) -> None:
        if self.enabled and shard.kind == "video":
            uri = shard.sources[0].uri
            self.left[uri].discard(shard.shard_id)
            if not self.left[uri]:
                self._track(self.videos[uri][0])

    def track_stale(self) -> None:
        """Track the videos whose tracking is missing or older than their newest shard (not in flight)."""
        if not self.enabled or not self.videos:
            return
        self.executor.wait(self.handles)
        for src in stale_videos(self.sink, self.videos):
            self._track(src)

    def wait(self) -> int:
        """Wait for every tracking task; returns how many failed (each left a retryable errors row)."""
        if not self.handles:
            return 0
        self.executor.wait(self.handles)
        return self.executor.failures(self.handles)


def _shard_work(spec: JobSpec, sink: DeltaSink, ctx: RowContext, runner_factory, summary: JobSummary,
                tick: Callable[[], None], tracker: _VideoTracker) -> ShardWork:
    """The executor-independent part of running the job's shards."""
    def record_failed(shard, stage, exc, attempts):
        rows = errors_table(failed_shard_errors(shard, stage, exc, attempts))
        _best_effort(summary, lambda: sink.replace("errors", rows, shard_predicates(shard)["errors"]))

    leases = _lenient(Leases)(spec.output, spec.storage_options)
    lease_calls = {} if leases is None else {
        "claim": _lenient(leases.claim, True), "renew": _lenient(leases.renew), "release": _lenient(leases.release)}
    # Preprocessing runs in the decode stage for registry networks; a custom runner gets raw images.
    return ShardWork(
        spec=spec, sink=sink, ctx=ctx, runner_factory=runner_factory, parse_config=spec.parse_config(),
        storage_options=dict(spec.storage_options),
        prepare=default_preparer(spec.model, spec.scales, spec.flip) if runner_factory is None else None,
        limits=image_limits(spec, registry_network=runner_factory is None), failed=record_failed,
        done=sink.done_shards, track=tracker.shard_done, leases=lease_calls, on_result=summary.add_result,
        on_failed=summary.add_failed, on_elsewhere=summary.add_elsewhere, tick=tick)


def _lenient(fn: Callable, on_error: Any = None) -> Callable:
    """``fn``, returning ``on_error`` instead of raising: a lease that cannot be read or written
    (leases only save work) never stops a job."""
    def call(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception:  # noqa: BLE001
            return on_error
    return call


def image_limits(spec: JobSpec, registry_network: bool) -> ImageLimits:
    """The spec's image limits and, for a registry network, the smallest decode size it needs
    (its input height, or fixed input size, times the largest test scale)."""
    if not registry_network:
        return ImageLimits(spec.max_pixels, spec.max_aspect)
    from pipeline.models import get

    prep, top = get(spec.model).preprocessing, max(spec.scales)
    if prep.input_size is not None:
        return ImageLimits(spec.max_pixels, spec.max_aspect, int(prep.input_size[0] * top),
                           int(prep.input_size[1] * top))
    return ImageLimits(spec.max_pixels, spec.max_aspect, 0, int(prep.target_height * top))


def _finish(spec: JobSpec, sink: DeltaSink, ctx: RowContext, summary: JobSummary, t_start: float,
            job_errors: int) -> JobSummary:
    """Totals and quality from the shard_log, the manifest (summary only), optional compaction."""
    totals = totals_from_log(sink)
    summary.frames, summary.people = totals["frames"], totals["people"]
    failed = summary.shards_failed_sources + summary.tracking_failed
    summary.errors = totals["errors"] + job_errors + failed
    summary.pending = totals["pending"] + failed
    summary.quality = quality_from_log(sink)
    summary.tracking = tracks_summary(sink)
    summary.elapsed_s = time.monotonic() - t_start
    summary.frames_per_s = summary.frames_this_run / summary.elapsed_s if summary.elapsed_s else 0.0
    summary.status = ("incomplete" if summary.pending or summary.unrecorded_errors else
                      "complete_with_errors" if summary.errors else "complete")
    if spec.compact:
        from pipeline.job.maintenance import compact

        _best_effort(summary, lambda: compact(sink))
    for fmt, dest, options in spec.export_requests():
        from pipeline.export import export

        done = _best_effort(summary, lambda: export(spec.output, fmt, dest, storage_options=spec.storage_options,
                                                    ray_address=spec.ray_address, num_cpus=spec.num_cpus, **options))
        summary.exports[fmt] = {"dest": dest, "files_written": getattr(done, "files_written", None),
                                "ok": done is not None}
    _best_effort(summary, lambda: sink.write_manifest({
        "job": "posepipe run", "spec": spec.to_dict(), "model_id": ctx.model_id, "config_id": ctx.config_id,
        "schema_versions": tables.versions(), "tables": {t: sink.uri(t) for t in tables.TABLES},
        "summary": summary.to_dict()}))
    return summary
