"""The Ray executor: a job's stages as Ray tasks and actors, on the in-process Ray or a cluster.

Three stages chained by object refs so the driver never touches pixels or maps: a CPU task decodes
a shard, one of ``pool_size`` network actors (1 GPU each when the cluster has GPUs, else CPU) runs
the network and finds limb candidates, a CPU task assembles people into the shard's rows, and the
job's CommitActor commits them to the Delta tables (pipeline.job.sink), several shards per commit
under load. A crashing decoder or network kernel only takes its worker process down.
"""
from __future__ import annotations

import os
import time
from typing import Any, Callable, Iterable

import ray
import ray.util.scheduling_strategies

from pipeline.job.decode import decode_shard
from pipeline.job.errors import JobError
from pipeline.job.orphans import forget_session, reap_orphans, record_session
from pipeline.job.pool import ActorPool
from pipeline.job.records import Shard, ShardResult
from pipeline.job.shard_runner import ShardWork
from pipeline.job.spec import JobSpec
from pipeline.job.stages import NetworkStage, ShardRows, assemble_rows, commit_rows

TASK_RETRIES = 3        # decode / assemble tasks whose worker process died
MAX_SHARDS_PER_COMMIT = 16
COMMIT_WAIT_S = 2.0     # a commit waits for more shards when they have been arriving faster than this
REGROW_AFTER_S = 60.0   # longer than Ray takes to mark a lost node dead (its resources leave the view)


def unwrap(exc: BaseException) -> BaseException:
    """The user-level exception inside a RayTaskError; other errors (actor death, ...) as they are."""
    if isinstance(exc, ray.exceptions.RayTaskError) and isinstance(getattr(exc, "cause", None), BaseException):
        return exc.cause
    return exc


@ray.remote(max_retries=TASK_RETRIES)
def _decode_task(shard, storage_options, prepare, limits):
    return decode_shard(shard, storage_options, prepare, limits)


@ray.remote(max_retries=TASK_RETRIES)
def _assemble_task(cands, ctx, parse_config):
    return assemble_rows(cands, ctx, parse_config)


@ray.remote(max_retries=TASK_RETRIES)
def _call_task(fn, *args):
    return fn(*args)


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

    def __init__(self, sink):
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


def resources(spec: JobSpec) -> dict[str, Any]:
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


def _ray_error(ref) -> BaseException | None:
    try:
        ray.get(ref, timeout=0)
    except Exception as exc:  # noqa: BLE001
        return unwrap(exc)
    return None


class RayExecutor:
    """Runs a job's work on Ray, started on first use (a finished job is re-checked without it)."""

    name = "ray"

    def __init__(self, spec: JobSpec):
        self.spec, self.started, self.ready = spec, False, False

    def start(self) -> None:
        if not self.ready:
            self.started, self.ready = _start_ray(self.spec), True

    def map(self, fn: Callable, items: list) -> list:
        """[fn(item) for item in items], each in its own Ray task (Ray is not started for no items)."""
        if not items:
            return []
        self.start()
        return ray.get([_call_task.remote(fn, item) for item in items])

    def submit(self, fn: Callable, *args) -> Any:
        """fn(*args) as a Ray task (retried if its worker dies); a handle for ``wait``/``failures``."""
        self.start()
        return _call_task.remote(fn, *args)

    def wait(self, handles: list) -> None:
        """Block until every handle is finished (failed or not)."""
        if handles:
            ray.wait(handles, num_returns=len(handles), timeout=None)

    def failures(self, handles: list) -> int:
        """How many of the (finished) handles raised."""
        return sum(_ray_error(h) is not None for h in handles)

    def run_shards(self, work: ShardWork, todo: Iterable[Shard]) -> None:
        """Every shard of ``todo`` through decode task -> network actor -> assemble task -> CommitActor."""
        self.start()
        res = resources(self.spec)
        pool = self._network_pool(work, res)
        # On the driver's node (soft: elsewhere if that node is gone), the writer of every commit.
        here = ray.util.scheduling_strategies.NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(),
                                                                            soft=True)
        committer = CommitActor.options(scheduling_strategy=here).remote(work.sink)
        calls = {
            "decode": lambda shard: _decode_task.remote(shard, work.storage_options, work.prepare, work.limits),
            "network": lambda actor, decoded: actor.run.remote(decoded),
            "commit": lambda cands: committer.commit.remote(_assemble_task.remote(cands, work.ctx, work.parse_config)),
            "wait": lambda refs, timeout_s: ray.wait(refs, num_returns=1, timeout=timeout_s)[0],
            "get": ray.get, "error": _ray_error,
            # the network actor's process died (not the commit actor, which Ray restarts)
            "died": lambda stage, exc: stage == "network" and isinstance(exc, ray.exceptions.RayActorError),
            # the commit actor is out of reach while Ray restarts it (its node lost): its calls' own
            # retries can all fail before Ray declares the node dead, so the shard is tried again later
            "unavailable": lambda stage, exc: stage == "write" and isinstance(exc, ray.exceptions.RayActorError),
        }
        try:
            work.run(calls, pool, res["max_in_flight"], todo)
        finally:
            pool.close()
            ray.kill(committer)

    def _network_pool(self, work: ShardWork, res: dict[str, Any]) -> ActorPool:
        """The network actors, started and loaded (JobError naming the model when loading fails)."""
        runner_kwargs = work.runner_kwargs(res["device"], max(1, int(res["cpus_per_actor"])))
        # On a GPU two shards run in an actor at once (threads), so one's copies and host work overlap
        # the other's network; a CPU actor's threads are all in its one network run.
        actor_opts = {"num_cpus": res["cpus_per_actor"], "num_gpus": res["num_gpus"], "max_restarts": 0,
                      "max_task_retries": 0, "max_concurrency": 2 if res["device"] == "cuda" else 1}

        def room(n: int) -> bool:
            total = ray.cluster_resources()
            if res["num_gpus"]:
                return n <= total.get("GPU", 0)
            return n * res["cpus_per_actor"] + 1 <= total.get("CPU", 0)

        pool = ActorPool(lambda: NetworkActor.options(**actor_opts).remote(work.runner_factory, runner_kwargs,
                                                                           work.parse_config),
                         res["pool_size"], room, ray.kill, REGROW_AFTER_S)
        try:
            ray.get([a.ready.remote() for a in pool.actors])
        except Exception as exc:  # noqa: BLE001
            pool.close()
            raise JobError.network_not_loaded(self.spec.model, unwrap(exc)) from exc
        return pool

    def close(self) -> None:
        if self.started:
            ray.shutdown()
            forget_session()
