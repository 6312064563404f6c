"""The inline executor: a job's stages as threads of the driver process, without Ray.

Starting and stopping Ray costs about 8 s on a 2-CPU machine, more than labelling 60 photos takes,
so ``executor: auto`` runs a local CPU job with little left to label (spec.INLINE_MAX_FRAMES) here.
One thread per stage -- decode, network (one replica using every CPU for its math threads),
assemble + commit -- so the stages overlap as Ray's tasks and actors do; the decoders and the
network runtime release the GIL while they work. The shard_log, the leases and the commit
protocol are the same as on Ray, so the rows are exactly the same and exactly once.
What inline gives up is crash isolation: a decoder or kernel that kills its process ends the job
(committed shards stay; run again with ``--executor ray`` to isolate each stage in a worker).
"""
from __future__ import annotations

import os
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from typing import Any, Callable, Iterable

from pipeline.job.decode import decode_shard
from pipeline.job.errors import JobError
from pipeline.job.pool import ActorPool
from pipeline.job.records import Shard
from pipeline.job.shard_runner import ShardWork
from pipeline.job.spec import JobSpec
from pipeline.job.stages import NetworkStage, assemble_rows, commit_rows

MAX_IN_FLIGHT = 3  # one shard per stage thread: decode, network, assemble + commit


class InlineExecutor:
    """Runs a job's work in threads of this process (the same calls as pipeline.job.ray_executor)."""

    name = "inline"

    def __init__(self, spec: JobSpec):
        self.spec = spec
        self.threads = spec.num_cpus or os.cpu_count() or 1
        self.pools: dict[str, ThreadPoolExecutor] = {}

    def _pool(self, stage: str, workers: int = 1) -> ThreadPoolExecutor:
        if stage not in self.pools:
            self.pools[stage] = ThreadPoolExecutor(workers, thread_name_prefix=f"posepipe-{stage}")
        return self.pools[stage]

    def map(self, fn: Callable, items: list) -> list:
        """[fn(item) for item in items] on up to ``num_cpus`` threads."""
        return list(self._pool("map", self.threads).map(fn, items)) if items else []

    def submit(self, fn: Callable, *args) -> Future:
        """fn(*args) in a background thread; a handle for ``wait``/``failures``."""
        return self._pool("background").submit(fn, *args)

    def wait(self, handles: list) -> None:
        """Block until every handle is finished (failed or not)."""
        wait_futures(handles)

    def failures(self, handles: list) -> int:
        """How many of the (finished) handles raised."""
        return sum(h.exception() is not None for h in handles)

    def run_shards(self, work: ShardWork, todo: Iterable[Shard]) -> None:
        """Every shard of ``todo`` through the decode thread -> network thread -> commit thread."""
        device = "cpu" if self.spec.device == "auto" else self.spec.device
        try:
            network = NetworkStage(work.runner_factory, work.runner_kwargs(device, self.threads), work.parse_config)
        except Exception as exc:  # noqa: BLE001
            raise JobError.network_not_loaded(self.spec.model, exc) from exc
        decode, infer, commit = self._pool("decode"), self._pool("network"), self._pool("commit")

        def assemble_commit(cands: Future) -> Any:
            return commit_rows(work.sink, [assemble_rows(cands.result(), work.ctx, work.parse_config)])[0]

        calls = {
            "decode": lambda shard: decode.submit(decode_shard, shard, work.storage_options, work.prepare,
                                                  work.limits),
            "network": lambda stage, decoded: infer.submit(lambda: stage(decoded.result())),
            "commit": lambda cands: commit.submit(assemble_commit, cands),
            "wait": lambda handles, timeout_s: list(wait_futures(handles, timeout_s, FIRST_COMPLETED).done),
            "get": lambda handle: handle.result(),
            "error": lambda handle: handle.exception(timeout=0),
            "died": lambda stage, exc: False,  # a crashed stage takes this process with it
        }
        pool = ActorPool(lambda: network, 1, room=lambda n: False, kill=lambda stage: None)
        work.run(calls, pool, MAX_IN_FLIGHT, todo)

    def close(self) -> None:
        """Stop the threads: calls not started are dropped (after an interrupt, say), running ones end."""
        for pool in self.pools.values():
            pool.shutdown(wait=True, cancel_futures=True)
        self.pools = {}
