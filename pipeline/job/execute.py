"""Run a JobSpec on Ray: open output -> list and plan, page by page, while the shards run
(+ per-video tracking) -> summary.

Ray core, three stages chained by object refs so the driver never touches pixels or maps: a CPU
task decodes a shard, one of ``pool_size`` network actors (1 GPU each when the cluster has GPUs,
else CPU) runs the network and finds limb candidates, a CPU task assembles people into the shard's
rows, and the job's CommitActor commits them to the Delta tables (pipeline.job.sink), several
shards per commit under load. Finished work is whatever the shard_log
says is done, so a re-run, a killed run or a second driver never duplicates or loses rows.
"""
from __future__ import annotations

import itertools
import os
import time
from typing import Any, Callable, Iterable, TextIO

import ray
import ray.util.scheduling_strategies

from pipeline import tables
from pipeline.job.decode import ImageLimits, decode_shard
from pipeline.job.leases import Leases
from pipeline.job.orphans import forget_session, reap_orphans, record_session
from pipeline.job.planner import Planner
from pipeline.job.pool import ActorPool
from pipeline.job.progress import JobSummary, Progress
from pipeline.job.records import Shard, ShardResult
from pipeline.job.rows import RowContext, errors_table, shard_predicates
from pipeline.job.shard_runner import ShardRunner, Stages, failed_shard_errors, unwrap
from pipeline.job.sink import DeltaSink, OutputAccessError, OutputConflictError, quote
from pipeline.job.spec import JobSpec
from pipeline.job.stages import NetworkStage, ShardRows, assemble_rows, commit_rows, default_preparer
from pipeline.job.summary import quality_from_log, totals_from_log, tracks_summary
from pipeline.job.track_task import stale_videos, track_source

TASK_RETRIES = 3        # decode / assemble tasks whose worker process died
MAX_SHARDS_PER_COMMIT = 16
COMMIT_WAIT_S = 2.0     # a commit waits for more shards when they have been arriving faster than this
REGROW_AFTER_S = 60.0   # longer than Ray takes to mark a lost node dead (its resources leave the view)


class JobError(RuntimeError):
    """The job cannot start (no usable input, unusable output, the network cannot be loaded)."""


@ray.remote(max_retries=TASK_RETRIES)
def _decode_task(shard, storage_options, prepare, limits):
    return decode_shard(shard, storage_options, prepare, limits)


@ray.remote(max_retries=TASK_RETRIES)
def _assemble_task(cands, ctx, parse_config):
    return assemble_rows(cands, ctx, parse_config)


# Restarted when its node is lost, and the calls it had are retried on the restarted actor
# (a commit is idempotent: it replaces the shards' rows, so running it twice changes nothing).
@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=TASK_RETRIES)
class CommitActor:
    """The job's one writer: group commit. A shard's rows that arrive while a commit runs wait for
    it to end and are then committed together with every other waiting shard's (up to
    MAX_SHARDS_PER_COMMIT) in one Delta commit per table; while shards arrive less than
    COMMIT_WAIT_S apart, a commit first waits 1.5 gaps (at most COMMIT_WAIT_S) for the next one.
    Under load several shards share each commit (fewer commits, log entries and data files per
    shard); a shard that comes alone commits at once.
    Async actor: ``commit`` calls interleave; the commits themselves run one at a time in a thread."""

    def __init__(self, sink: DeltaSink):
        self.sink, self.waiting, self.committing = sink, [], False
        self.last_arrival, self.gap = None, None  # seconds between shards arriving (moving average)

    async def commit(self, rows: ShardRows) -> ShardResult:
        import asyncio

        now = time.monotonic()
        if self.last_arrival is not None:
            gap = now - self.last_arrival
            self.gap = gap if self.gap is None else 0.5 * (self.gap + gap)
        self.last_arrival = now
        done = asyncio.get_running_loop().create_future()
        self.waiting.append((rows, done))
        if not self.committing:
            self.committing = True
            asyncio.get_running_loop().create_task(self._drain())
        return await done

    async def _drain(self) -> None:
        import asyncio

        try:
            while self.waiting:
                if len(self.waiting) < MAX_SHARDS_PER_COMMIT and self.gap is not None and self.gap < COMMIT_WAIT_S:
                    await asyncio.sleep(min(COMMIT_WAIT_S, 1.5 * self.gap))  # shards come fast: wait for the next
                batch, self.waiting = self.waiting[:MAX_SHARDS_PER_COMMIT], self.waiting[MAX_SHARDS_PER_COMMIT:]
                try:
                    results = await asyncio.get_running_loop().run_in_executor(
                        None, commit_rows, self.sink, [rows for rows, _ in batch])
                    for (_, done), result in zip(batch, results):
                        done.set_result(result)
                except Exception as exc:  # noqa: BLE001 - each waiting shard fails (and is retried)
                    for _, done in batch:
                        done.set_exception(exc)
        finally:
            self.committing = False


@ray.remote(max_retries=TASK_RETRIES)
def _track_task(sink, source, ctx, track_config):
    return track_source(sink, source, ctx, track_config)


@ray.remote(max_retries=TASK_RETRIES)
def _apply_task(fn, item):
    return fn(item)


class _RaySession:
    """Ray for one job, started on first use: a finished job is re-checked without it."""

    def __init__(self, spec: JobSpec):
        self.spec, self.started, self.ready = spec, False, False

    def start(self) -> None:
        if not self.ready:
            self.started, self.ready = _start_ray(self.spec), True

    def map(self, fn, items: list) -> list:
        """[fn(item) for item in items], each in its own Ray task (Ray is not started for no items)."""
        if not items:
            return []
        self.start()
        return ray.get([_apply_task.remote(fn, item) for item in items])

    def close(self) -> None:
        if self.started:
            ray.shutdown()
            forget_session()


@ray.remote
class NetworkActor:
    """Ray actor around one NetworkStage (one network replica)."""

    def __init__(self, runner_factory, runner_kwargs, parse_config):
        self.stage = NetworkStage(runner_factory, runner_kwargs, parse_config)

    def ready(self) -> bool:
        return True

    def run(self, decoded):
        return self.stage(decoded)


def _start_ray(spec: JobSpec) -> bool:
    """Connect to/start Ray as the spec says; True when this call started it (and must stop it)."""
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if spec.ray_address:
        ray.init(address=spec.ray_address, log_to_driver=False, configure_logging=False)
        return True
    reap_orphans()  # Ray processes of an earlier posepipe driver that was killed
    ray.init(num_cpus=spec.num_cpus or os.cpu_count() or 1, include_dashboard=False,
             log_to_driver=False, configure_logging=False)
    record_session(ray._private.worker._global_node.get_session_dir_path())
    return True


def _resources(spec: JobSpec) -> dict[str, Any]:
    """device, pool_size, cpus_per_actor, num_gpus and max_in_flight for this Ray cluster.

    GPU: one actor per GPU (1 CPU each). CPU: actors of 2 CPUs (1 on machines under 4 CPUs) filling
    the CPUs but a quarter (at least 1) kept for the decode/commit tasks.
    """
    res = ray.cluster_resources()
    gpus, cpus = int(res.get("GPU", 0)), max(1, int(res.get("CPU", 1)))
    device = spec.device if spec.device != "auto" else ("cuda" if gpus else "cpu")
    if device == "cuda" and not gpus:
        raise JobError("device 'cuda' was asked for but the Ray cluster has no GPUs; use --device cpu or auto")
    if device == "cuda":
        pool = min(spec.pool_size or gpus, gpus)
        cpus_per_actor = spec.cpus_per_actor or 1.0
    else:
        cpus_per_actor = spec.cpus_per_actor or (2.0 if cpus >= 4 else 1.0)
        pool = spec.pool_size or max(1, int((cpus - max(1, cpus // 4)) // cpus_per_actor))
    if pool * cpus_per_actor >= cpus:  # always leave a CPU for decode/commit tasks
        cpus_per_actor = max(0.5, (cpus - 1) / pool) if cpus > 1 else 0.5 / pool
    return {"device": device, "pool_size": pool, "cpus_per_actor": cpus_per_actor,
            "num_gpus": 1 if device == "cuda" else 0, "max_in_flight": spec.max_in_flight or 2 * pool + 2}


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
    session, summary = _RaySession(spec), JobSummary(output=spec.output)
    tracker = _VideoTracker(spec, sink, ctx, session)
    planner = Planner(sink, spec, ctx, map_fn=session.map, on_planned=tracker.add)
    try:
        shards = planner.shards()
        first = next(shards, None)
        totals = planner.totals
        if first is None and not totals.sources and totals.errors and not any(
                e.error_type == "UnsupportedMediaError" for e in totals.errors):
            raise JobError("no input could be listed:\n  " + "\n  ".join(e.message for e in totals.errors))
        progress = Progress(summary, stream, enabled=spec.progress)
        tick = _Ticker(progress, summary, totals)
        if first is not None:
            _run_shards(spec, sink, ctx, itertools.chain([first], shards), runner_factory, summary, tick, tracker,
                        session)
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
        session.close()


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
    """Starts a video's tracking task once all of its shards are committed (here or earlier)."""

    def __init__(self, spec: JobSpec, sink: DeltaSink, ctx: RowContext, session: _RaySession):
        self.enabled, self.sink, self.ctx, self.config = spec.tracking, sink, ctx, spec.track_config()
        self.session = session
        self.videos: dict[str, tuple[Any, list[str]]] = {}
        self.left: dict[str, set[str]] = {}
        self.refs: list = []

    def add(self, shards: list[Shard]) -> None:
        """Register planned shards (all of a video's shards come in one call)."""
        for s in shards:
            if s.kind == "video":
                self.videos.setdefault(s.sources[0].uri, (s.sources[0], []))[1].append(s.shard_id)
                self.left.setdefault(s.sources[0].uri, set()).add(s.shard_id)

    def shard_done(self, shard: Shard) -> None:
        if self.enabled and shard.kind == "video":
            uri = shard.sources[0].uri
            self.left[uri].discard(shard.shard_id)
            if not self.left[uri]:
                self.refs.append(_track_task.remote(self.sink, self.videos[uri][0], self.ctx, self.config))

    def track_stale(self) -> None:
        """Track the videos whose tracking is missing or older than their newest shard (not in flight)."""
        if not self.enabled or not self.videos:
            return
        if self.refs:
            ray.wait(self.refs, num_returns=len(self.refs), timeout=None)
        stale = stale_videos(self.sink, self.videos)
        if stale:
            self.session.start()
        for src in stale:
            self.refs.append(_track_task.remote(self.sink, src, self.ctx, self.config))

    def wait(self) -> int:
        """Wait for every tracking task; returns how many failed (each left a retryable errors row)."""
        failed = 0
        for ref in self.refs:
            try:
                ray.get(ref)
            except Exception:  # noqa: BLE001 - recorded as a retryable errors row by the task
                failed += 1
        return failed


def _run_shards(spec: JobSpec, sink: DeltaSink, ctx: RowContext, todo: Iterable[Shard], runner_factory,
                summary: JobSummary, tick: Callable[[], None], tracker: _VideoTracker, session: _RaySession) -> None:
    session.start()
    res = _resources(spec)
    pool = _network_pool(spec, res, runner_factory, ctx)
    parse_config, options = spec.parse_config(), dict(spec.storage_options)
    # Preprocessing runs in the CPU decode tasks for registry networks; a custom runner gets raw images.
    prepare = default_preparer(spec.model, spec.scales, spec.flip) if runner_factory is None else None
    limits = image_limits(spec, registry_network=runner_factory is None)

    def record_failed(shard, stage, exc, attempts):
        rows = errors_table(failed_shard_errors(shard, stage, exc, attempts))
        _best_effort(summary, lambda: sink.replace("errors", rows, shard_predicates(shard)["errors"]))

    # On the driver's node (soft: elsewhere if that node is gone), the writer of every commit.
    here = ray.util.scheduling_strategies.NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(),
                                                                        soft=True)
    committer = CommitActor.options(scheduling_strategy=here).remote(sink)
    leases = _lenient(Leases)(spec.output, spec.storage_options)
    lease_stages = {} if leases is None else {
        "claim": _lenient(leases.claim, True), "renew": _lenient(leases.renew), "release": _lenient(leases.release)}
    stages = Stages(
        decode=lambda shard: _decode_task.remote(shard, options, prepare, limits),
        network=lambda actor, decoded: actor.run.remote(decoded),
        commit=lambda cands: committer.commit.remote(_assemble_task.remote(cands, ctx, parse_config)),
        failed=record_failed, done=sink.done_shards, track=tracker.shard_done, **lease_stages)
    runner = ShardRunner(stages, pool, res["max_in_flight"], spec.shard_retries,
                         on_result=summary.add_result, on_failed=summary.add_failed, tick=tick,
                         on_elsewhere=summary.add_elsewhere)
    try:
        runner.run(todo)
    finally:
        pool.close()
        ray.kill(committer)


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


def _network_pool(spec: JobSpec, res: dict[str, Any], runner_factory, ctx: RowContext) -> ActorPool:
    """The network actors, started and loaded (JobError naming the model when loading fails)."""
    runner_kwargs = {"model_name": spec.model, "device": res["device"], "batch_size": spec.batch_size,
                     "precision": spec.precision, "scales": tuple(spec.scales), "flip": spec.flip,
                     "model_dir": spec.model_dir, "backend": spec.backend,
                     "num_threads": max(1, int(res["cpus_per_actor"]))}
    # On a GPU two shards run in an actor at once (threads), so one's copies and host work overlap
    # the other's network; a CPU actor's threads are all in its one network run.
    actor_opts = {"num_cpus": res["cpus_per_actor"], "num_gpus": res["num_gpus"], "max_restarts": 0,
                  "max_task_retries": 0, "max_concurrency": 2 if res["device"] == "cuda" else 1}

    def room(n: int) -> bool:
        total = ray.cluster_resources()
        if res["num_gpus"]:
            return n <= total.get("GPU", 0)
        return n * res["cpus_per_actor"] + 1 <= total.get("CPU", 0)

    pool = ActorPool(lambda: NetworkActor.options(**actor_opts).remote(runner_factory, runner_kwargs,
                                                                       spec.parse_config()),
                     res["pool_size"], room, ray.kill, REGROW_AFTER_S)
    try:
        ray.get([a.ready.remote() for a in pool.actors])
    except Exception as exc:  # noqa: BLE001
        pool.close()
        raise JobError(f"the network {spec.model!r} could not be loaded: {unwrap(exc)}") from exc
    return pool


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
