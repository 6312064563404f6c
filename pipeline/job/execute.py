"""Run a JobSpec on Ray: list -> shard -> (decode task -> network actor -> assemble+write task) -> manifest.

Ray core, three stages chained by object refs so the driver never touches pixels or maps:
a CPU task decodes a shard, one of ``pool_size`` network actors (1 GPU each when the cluster
has GPUs, else CPU) runs the network and finds limb candidates, a CPU task assembles people and
writes the shard's Parquet files and marker. At most ``max_in_flight`` shards are between decode
and write at once, which bounds memory. Failed tasks are retried by Ray (worker crashes), dead
actors are restarted; a shard that still fails is retried ``shard_retries`` more times and then
recorded in ``errors`` while the job goes on.
"""
from __future__ import annotations

import hashlib
import os
import time
from collections import deque
from typing import Any, Callable, TextIO

import ray

from pipeline.job import manifest as mf
from pipeline.job.listing import list_sources
from pipeline.job.progress import JobSummary, Progress
from pipeline.job.records import ErrorRecord, Shard, ShardResult
from pipeline.job.shards import plan
from pipeline.job.spec import JobSpec
from pipeline.job.stages import (NetworkStage, WriteContext, assemble_and_write, decode_shard, default_preparer,
                                 write_errors)
from pipeline.storage import filesystem
from pipeline import tables

# A crashed network actor is not restarted by Ray (a restart lands wherever Ray finds room, which
# after a node loss can take the last CPUs that decode/write tasks need); the driver replaces it,
# or shrinks the pool when the smaller cluster has no room, and retries its shards (see failed()).
ACTOR_RESTARTS = 0
ACTOR_TASK_RETRIES = 0
TASK_RETRIES = 3        # decode / write tasks whose worker process died
REGROW_AFTER_S = 60.0   # longer than Ray takes to mark a lost node dead (its resources leave the view)
MANIFEST_EVERY_S = 30.0  # the manifest's shard statuses are refreshed this often during a run


class JobError(RuntimeError):
    """The job cannot start (no usable input, unusable output, the network cannot be loaded)."""


@ray.remote(max_retries=TASK_RETRIES)
def _decode_task(shard, storage_options, prepare):
    return decode_shard(shard, storage_options, prepare)


@ray.remote(max_retries=TASK_RETRIES)
def _write_task(cands, ctx):
    return assemble_and_write(cands, ctx)


@ray.remote(max_retries=TASK_RETRIES)
def _apply_task(fn, item):
    return fn(item)


def _ray_map(fn, items: list) -> list:
    """[fn(item) for item in items], each in its own Ray task."""
    return ray.get([_apply_task.remote(fn, item) for item in items])


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
    else:
        ray.init(num_cpus=spec.num_cpus or os.cpu_count() or 1, include_dashboard=False,
                 log_to_driver=False, configure_logging=False)
    return True


def _resources(spec: JobSpec) -> dict[str, Any]:
    """device, pool_size, cpus_per_actor, num_gpus and max_in_flight for this Ray cluster.

    GPU: one actor per GPU (1 CPU each). CPU: actors of 2 CPUs (1 on machines under 4 CPUs) filling
    the CPUs but a quarter (at least 1) kept for the decode/assemble tasks -- several small actors
    beat one many-threaded one, and oversubscribed math threads are very slow on a busy machine.
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
    if pool * cpus_per_actor >= cpus:  # always leave a CPU for decode/assemble tasks
        cpus_per_actor = max(0.5, (cpus - 1) / pool) if cpus > 1 else 0.5 / pool
    return {"device": device, "pool_size": pool, "cpus_per_actor": cpus_per_actor,
            "num_gpus": 1 if device == "cuda" else 0, "max_in_flight": spec.max_in_flight or 2 * pool + 2}


def _quality(output: str, storage_options: dict) -> dict:
    """Label-free quality figures of everything in ``output`` (see pipeline.evaluation.quality_summary)."""
    from pipeline.evaluation.quality import quality_summary
    from pipeline.job.read import read_frames, read_poses

    poses = read_poses(output, columns=["source_uri", "frame_index", "score", "keypoints"],
                       storage_options=storage_options)
    frames = read_frames(output, columns=["source_uri", "frame_index", "num_people"], storage_options=storage_options)
    return quality_summary(poses, frames)


def _room_for_replica(pool: int, res: dict[str, Any]) -> bool:
    """Whether the cluster as it is now fits ``pool`` network actors and still leaves at least one
    CPU for decode/write tasks (False after the cluster lost a node it was sized for)."""
    total = ray.cluster_resources()
    if res["num_gpus"]:
        return pool <= total.get("GPU", 0)
    return pool * res["cpus_per_actor"] + 1 <= total.get("CPU", 0)


def _model_id(spec: JobSpec) -> str:
    from pipeline.models import model_id

    return model_id(spec.model)


def _unwrap(exc: BaseException) -> BaseException:
    """The user-level exception inside a RayTaskError; other errors (actor death, ...) as they are."""
    if isinstance(exc, ray.exceptions.RayTaskError) and isinstance(getattr(exc, "cause", None), BaseException):
        return exc.cause
    return exc


class _InFlight:
    """One shard between decode and write: its refs per stage, the actor it was given to, its
    attempt number and whether it runs alone (suspected of crashing its actor)."""

    def __init__(self, shard: Shard, refs: dict, actor, attempt: int, alone: bool):
        self.shard, self.refs, self.actor, self.attempt, self.alone = shard, refs, actor, attempt, alone

    def failure(self) -> tuple[str, BaseException]:
        """(stage, exception) of the first stage that failed."""
        for stage in ("decode", "network", "write"):
            try:
                ray.get(self.refs[stage], timeout=0)
            except Exception as exc:  # noqa: BLE001
                return stage, _unwrap(exc)
        return "write", RuntimeError("unknown failure")


def run_job(spec: JobSpec, *, runner_factory: Callable[..., Any] | None = None, model_id: str | None = None,
            stream: TextIO | None = None) -> JobSummary:
    """Run ``spec`` to completion and return its summary (also stored in the manifest).

    runner_factory / model_id replace the registry network (tests use a stand-in that renders known
    skeletons); by default the runner is pipeline.models.inference.PoseNetRunner(spec.model, ...).
    Raises JobError when the job cannot start; per-input and per-shard failures go to ``errors``.
    """
    t_start = time.monotonic()
    model_id = model_id or _model_id(spec)
    config_id = spec.config_id()
    parse_config = spec.parse_config()
    so = dict(spec.storage_options)
    summary = JobSummary(output=spec.output)
    progress = Progress(summary, stream, enabled=spec.progress)

    try:
        mf.check_output(spec.output, model_id, config_id, so)
    except (mf.OutputAccessError, mf.OutputConflictError) as exc:
        raise JobError(str(exc)) from exc
    sources, list_errors = list_sources(spec.input, so)
    if not sources and list_errors and not any(e.error_type == "UnsupportedMediaError" for e in list_errors):
        raise JobError("no input could be listed:\n  " + "\n  ".join(e.message for e in list_errors))
    started_ray = _start_ray(spec)
    try:
        shards, plan_errors = plan(sources, images_per_shard=spec.images_per_shard,
                                   frames_per_shard=spec.frames_per_shard, frame_step=spec.frame_step,
                                   model_id=model_id, config_id=config_id, storage_options=so, map_fn=_ray_map)
        fs, _ = filesystem(spec.output, so)
        job_errors = list_errors + plan_errors
        write_errors(fs, spec.output, "listing-" + hashlib.sha256("\0".join(spec.input).encode()).hexdigest()[:16],
                     job_errors)
        done = mf.finished_shards(spec.output, so)
        todo = [s for s in shards if s.shard_id not in done]
        summary.shards_total, summary.shards_skipped = len(shards), len(shards) - len(todo)
        summary.errors = len(job_errors)
        for s in shards:
            if s.shard_id in done:
                m = done[s.shard_id]
                summary.frames += m["frames"]
                summary.people += m["people"]
                summary.errors += m["errors"]
        base_manifest = {
            "job": "posepipe run", "spec": spec.to_dict(), "model_id": model_id, "config_id": config_id,
            "schema_versions": tables.versions(),
            "tables": {t: f"{spec.output.rstrip('/')}/{t}" for t in tables.TABLES},
        }
        status: dict[str, str] = {s.shard_id: ("done" if s.shard_id in done else "pending") for s in shards}

        def manifest_body():
            return {**base_manifest, "summary": summary.to_dict(),
                    "shards": [{"shard_id": s.shard_id, "kind": s.kind, "status": status[s.shard_id],
                                "sources": [x.uri for x in s.sources],
                                "frames": None if s.frames is None else [s.frames.start, s.frames.stop, s.frames.step]}
                               for s in shards]}

        mf.write_manifest(spec.output, manifest_body(), so)
        if todo:
            _run_shards(spec, todo, runner_factory, parse_config,
                        WriteContext(spec.output, model_id, config_id, parse_config, so),
                        summary, status, progress, lambda: mf.write_manifest(spec.output, manifest_body(), so))
        if spec.tracking:
            from pipeline.job.tracking import track_videos

            summary.errors += track_videos(spec.output, shards, status, so)
        summary.quality = _quality(spec.output, so)
        summary.elapsed_s = time.monotonic() - t_start
        summary.frames_per_s = summary.frames_this_run / summary.elapsed_s if summary.elapsed_s else 0.0
        summary.status = "complete_with_errors" if summary.errors or summary.shards_failed else "complete"
        mf.write_manifest(spec.output, manifest_body(), so)
        progress.close()
        return summary
    finally:
        if started_ray:
            ray.shutdown()


def _run_shards(spec: JobSpec, todo: list[Shard], runner_factory, parse_config, ctx: WriteContext,
                summary: JobSummary, status: dict[str, str], progress: Progress,
                checkpoint: Callable[[], None]) -> None:
    """Push ``todo`` through decode -> network -> assemble+write, updating summary/status as shards end;
    ``checkpoint()`` (rewrite the manifest) runs every MANIFEST_EVERY_S seconds."""
    res = _resources(spec)
    runner_kwargs = {"model_name": spec.model, "device": res["device"], "batch_size": spec.batch_size,
                     "precision": spec.precision, "scales": tuple(spec.scales), "flip": spec.flip,
                     "model_dir": spec.model_dir}
    actor_opts = {"num_cpus": res["cpus_per_actor"], "num_gpus": res["num_gpus"],
                  "max_restarts": ACTOR_RESTARTS, "max_task_retries": ACTOR_TASK_RETRIES}

    def new_actor():
        return NetworkActor.options(**actor_opts).remote(runner_factory, runner_kwargs, parse_config)

    actors = [new_actor() for _ in range(res["pool_size"])]
    try:
        ray.get([a.ready.remote() for a in actors])
    except Exception as exc:  # noqa: BLE001
        raise JobError(f"the network {spec.model!r} could not be loaded: {_unwrap(exc)}") from exc
    so = dict(spec.storage_options)
    # Preprocessing runs in the CPU decode tasks for registry networks; a custom runner gets raw images.
    prepare = default_preparer(spec.model, spec.scales, spec.flip) if runner_factory is None else None
    # (shard, attempt, alone): a shard whose network actor died is retried alone (nothing else in
    # flight), because a crash also fails the innocent calls queued on that actor; only a failure
    # while alone (or a plain exception) counts as an attempt of that shard.
    queue: deque[tuple[Shard, int, bool]] = deque((s, 1, False) for s in todo)
    regrow_at = [0.0]  # when the pool may grow back after losing an actor (monotonic seconds)
    in_flight: dict[Any, _InFlight] = {}

    def submit(shard: Shard, attempt: int, alone: bool) -> None:
        busy = [sum(j.actor is a for j in in_flight.values()) for a in actors]
        actor = actors[busy.index(min(busy))]  # the least loaded replica
        d = _decode_task.remote(shard, so, prepare)
        n = actor.run.remote(d)
        w = _write_task.remote(n, ctx)
        in_flight[w] = _InFlight(shard, {"decode": d, "network": n, "write": w}, actor, attempt, alone)

    def failed(job: _InFlight) -> None:
        stage, exc = job.failure()
        died = isinstance(exc, ray.exceptions.RayActorError)
        if died and any(job.actor is a for a in actors):  # drop the dead (or dying) replica once
            # Shrink the pool now and grow it back only once the cluster's resources are known again:
            # the error can arrive before Ray marks a lost node dead, and a replacement placed on the
            # surviving nodes could take the last CPUs that decode/write tasks need.
            actors.remove(job.actor)
            ray.kill(job.actor)
            if actors:
                regrow_at[0] = time.monotonic() + REGROW_AFTER_S
            else:
                actors.append(new_actor())
        if died and not job.alone:
            queue.appendleft((job.shard, job.attempt, True))
        elif job.attempt <= spec.shard_retries:
            queue.append((job.shard, job.attempt + 1, job.alone))
        else:
            _record_failed_shard(ctx, job.shard, stage, exc, job.attempt)
            status[job.shard.shard_id] = "failed"
            summary.shards_failed += 1
            summary.errors += len(job.shard.sources)

    last_checkpoint = time.monotonic()
    try:
        while queue or in_flight:
            while queue and len(in_flight) < res["max_in_flight"]:
                if in_flight and (queue[0][2] or any(j.alone for j in in_flight.values())):
                    break  # a suspect runs alone
                submit(*queue.popleft())
            ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=1.0)
            for ref in ready:
                job = in_flight.pop(ref)
                try:
                    result: ShardResult = ray.get(ref)
                except Exception:  # noqa: BLE001
                    failed(job)
                    continue
                status[job.shard.shard_id] = "done"
                summary.shards_done += 1
                summary.frames += result.frames
                summary.frames_this_run += result.frames
                summary.people += result.people
                summary.errors += result.errors
                for k, v in (("decode", result.decode_seconds), ("network", result.network_seconds),
                             ("parse", result.parse_seconds), ("write", result.write_seconds)):
                    summary.stage_seconds[k] += v
            if (len(actors) < res["pool_size"] and time.monotonic() >= regrow_at[0]
                    and _room_for_replica(len(actors) + 1, res)):
                actors.append(new_actor())
            progress.update()
            if time.monotonic() - last_checkpoint > MANIFEST_EVERY_S:
                checkpoint()
                last_checkpoint = time.monotonic()
    finally:
        for a in actors:
            ray.kill(a)


def _record_failed_shard(ctx: WriteContext, shard: Shard, stage: str, exc: BaseException, attempts: int) -> None:
    """Write one errors row per source of a shard that failed ``attempts`` times at ``stage``."""
    what = f"frames {shard.frames.start}..{shard.frames.stop - 1} " if shard.frames is not None else ""
    rows = [ErrorRecord(
        input=src.uri, stage=stage, error_type=type(exc).__name__,
        message=(f"{src.uri}: {what}failed in the {stage} stage {attempts} times ({type(exc).__name__}: "
                 f"{str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}); the rest of the job "
                 "went on; run the job again to retry this shard"),
        shard_id=shard.shard_id, attempts=attempts) for src in shard.sources]
    fs, _ = filesystem(ctx.output, ctx.storage_options)
    write_errors(fs, ctx.output, f"part-{shard.shard_id}", rows)
