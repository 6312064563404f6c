"""The generic shard runner: pushes shards through decode -> network -> commit, retries, keeps at
most ``max_in_flight`` shards in flight, and starts each video's tracking task as soon as its last
shard is committed.

It knows nothing of where the stages run: the executor's Stages give it handles (Ray ObjectRefs, or
concurrent.futures Futures for the in-process executor) and the calls that wait on them.
The driver holds only handles, ShardResults and counters: its memory per shard does not grow with
the job (finished work is known from the shard_log, never kept in a per-shard record).
"""
from __future__ import annotations

import itertools
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from pipeline.job.pool import ActorPool
from pipeline.job.records import ErrorRecord, Shard, ShardResult

DONE_REFRESH_S = 10.0  # how often shards waiting on another driver's lease are checked again
RENEW_S = 120.0        # how often the leases of shards in flight are renewed (well inside LEASE_S)
CLAIM_BATCH = 16       # new shards leased, and checked against the shard_log in one query, at a time
UNAVAILABLE_RETRY_S = 2.0     # a shard whose stage was only out of reach (Stages.unavailable) is tried again after this,
UNAVAILABLE_WINDOW_S = 180.0  # without counting an attempt, for this long (a lost node takes Ray ~30 s to declare)


@dataclass
class InFlight:
    """One shard between decode and commit: its handles per stage, its actor, attempt number and
    whether it runs alone (suspected of crashing its actor)."""

    shard: Shard
    refs: dict
    actor: Any
    attempt: int
    alone: bool

    def failure(self, error: Callable[[Any], BaseException | None]) -> tuple[str, BaseException]:
        """(stage, exception) of the first stage whose handle failed (``error``: Stages.error)."""
        for stage in ("decode", "network", "write"):
            exc = error(self.refs[stage])
            if exc is not None:
                return stage, exc
        return "write", RuntimeError("unknown failure")


def _always(*args) -> bool:
    return True


def _nothing(*args) -> None:
    return None


def _never(*args) -> bool:
    return False


@dataclass
class Stages:
    """The executor's calls for one job: ``decode(shard)``, ``network(actor, decoded)``, ``commit(cands)``
    return handles; ``wait(handles, timeout_s)`` returns those of them that are finished (at least one,
    unless the timeout passes), ``get(handle)`` a finished handle's result (raising its stage's error),
    ``error(handle)`` a finished handle's user-level exception or None, ``died(stage, exc)`` whether
    ``exc`` means the network replica itself died (its process crashed), ``unavailable(stage, exc)``
    whether it means the stage's worker is only out of reach for now (the commit actor restarting
    after its node was lost: the shard is tried again later without counting an attempt);
    ``failed(shard, stage, exc, attempts)`` records a shard that gave up;
    ``done(shards)`` reads which of those shards are finished (their ids); ``track(shard)`` is called after
    each committed shard. Shard leases (pipeline.job.leases): ``claim(shard_id)`` is False while
    another driver holds the shard, ``renew(shard_ids)`` keeps this driver's leases of shards in
    flight, ``release(shard_id)`` after a shard's commit or final failure."""

    decode: Callable
    network: Callable
    commit: Callable
    wait: Callable[[list, float], list]
    get: Callable[[Any], Any]
    error: Callable[[Any], BaseException | None]
    died: Callable[[str, BaseException], bool]
    failed: Callable
    done: Callable[[list[Shard]], set]
    track: Callable[[Shard], None]
    unavailable: Callable[[str, BaseException], bool] = _never
    claim: Callable[[str], bool] = _always
    renew: Callable[[list[str]], None] = _nothing
    release: Callable[[str], None] = _nothing


@dataclass
class ShardWork:
    """What every executor needs to run one job's shards, whatever runs the stages.

    spec, sink, ctx: the job's JobSpec, DeltaSink and RowContext; runner_factory: None (the registry
    network) or a stand-in (pipeline.testing.RenderedRunner); parse_config: the ParseConfig;
    storage_options, prepare, limits: what decode_shard takes; failed, done, track, leases: the
    executor-independent Stages calls (leases: claim/renew/release, or {} without leases);
    on_result, on_failed, on_elsewhere, tick: the ShardRunner's callbacks.
    """

    spec: Any
    sink: Any
    ctx: Any
    runner_factory: Callable | None
    parse_config: Any
    storage_options: dict
    prepare: Callable | None
    limits: Any
    failed: Callable
    done: Callable[[list[Shard]], set]
    track: Callable[[Shard], None]
    leases: dict
    on_result: Callable[[Shard, ShardResult], None]
    on_failed: Callable[[Shard], None]
    on_elsewhere: Callable[[Shard], None]
    tick: Callable[[], None]

    def runner_kwargs(self, device: str, num_threads: int) -> dict[str, Any]:
        """The network runner's arguments (pipeline.models.inference.PoseNetRunner) on ``device``
        with ``num_threads`` math threads."""
        spec = self.spec
        return {"model_name": spec.model, "device": device, "batch_size": spec.batch_size,
                "precision": spec.precision, "scales": tuple(spec.scales), "flip": spec.flip,
                "model_dir": spec.model_dir, "backend": spec.backend, "num_threads": num_threads}

    def run(self, calls: dict[str, Callable], pool: ActorPool, max_in_flight: int, todo: Iterable[Shard]) -> None:
        """Run ``todo`` with the executor's ``calls`` (decode, network, commit, wait, get, error, died,
        and optionally unavailable)."""
        stages = Stages(**calls, failed=self.failed, done=self.done, track=self.track, **self.leases)
        ShardRunner(stages, pool, max_in_flight, self.spec.shard_retries, on_result=self.on_result,
                    on_failed=self.on_failed, tick=self.tick, on_elsewhere=self.on_elsewhere).run(todo)


class ShardRunner:
    """Runs shards to completion with the pool policy of :class:`pipeline.job.pool.ActorPool`."""

    def __init__(self, stages: Stages, pool: ActorPool, max_in_flight: int, shard_retries: int,
                 on_result: Callable[[Shard, ShardResult], None], on_failed: Callable[[Shard], None],
                 tick: Callable[[], None], on_elsewhere: Callable[[Shard], None] = _nothing):
        self.stages, self.pool, self.max_in_flight, self.shard_retries = stages, pool, max_in_flight, shard_retries
        self.on_result, self.on_failed, self.tick, self.on_elsewhere = on_result, on_failed, tick, on_elsewhere
        self.queue: deque[tuple[Shard, int, bool]] = deque()
        self.claimed: deque[Shard] = deque()  # new shards leased by this driver, not yet submitted
        self.in_flight: dict[Any, InFlight] = {}
        self.elsewhere: list[Shard] = []  # shards another driver holds the lease of
        self.later: list[tuple[float, tuple[Shard, int, bool]]] = []  # (not before, queue item): out of reach
        self.unavailable_since: dict[str, float] = {}  # shard id -> first time its stage was out of reach

    def run(self, shards: Iterable[Shard]) -> None:
        """Process ``shards`` (each once, unless another driver holds or commits it), pulling them
        from the iterable only as room opens up, CLAIM_BATCH at a time, so a streamed plan is never
        held whole; each batch is leased and checked against the shard_log at once. Shards
        leased by another driver are left to it, checked every DONE_REFRESH_S, and taken over if
        its lease expires before they are committed."""
        self.upcoming: Iterator[Shard] | None = iter(shards)
        checked = renewed = time.monotonic()
        while (self.queue or self.claimed or self.in_flight or self.upcoming is not None or self.elsewhere
               or self.later):
            now = time.monotonic()
            if self.later:
                self.queue.extend(item for due, item in self.later if due <= now)
                self.later = [(due, item) for due, item in self.later if due > now]
            if self.elsewhere and now - checked > DONE_REFRESH_S:
                self._check_elsewhere()
                checked = now
            if (self.in_flight or self.claimed) and now - renewed > RENEW_S:
                self.stages.renew([j.shard.shard_id for j in self.in_flight.values()] +
                                  [shard.shard_id for shard in self.claimed])
                renewed = now
            self._fill()
            if not self.in_flight:
                if (self.elsewhere or self.later) and not self.queue and not self.claimed and self.upcoming is None:
                    time.sleep(min(1.0, DONE_REFRESH_S, UNAVAILABLE_RETRY_S))  # only shards to wait for are left
                continue
            for ref in self.stages.wait(list(self.in_flight), 1.0):
                self._finish(self.in_flight.pop(ref), ref)
            self.pool.maybe_regrow()
            self.tick()

    def _check_elsewhere(self) -> None:
        """Drop the shards another driver committed; claim those whose lease has expired."""
        done = self.stages.done(self.elsewhere)
        waiting, self.elsewhere = self.elsewhere, []
        for shard in waiting:
            if shard.shard_id in done:
                self.on_elsewhere(shard)
        for shard in self._claim([s for s in waiting if s.shard_id not in done]):
            self.queue.append((shard, 1, False))

    def _claim(self, shards: list[Shard]) -> list[Shard]:
        """Lease ``shards`` for this driver and return those it now runs. A shard another driver
        holds goes to ``elsewhere``; one another driver committed since it was planned (one
        shard_log query for all of them) is given back and passed to on_elsewhere."""
        mine = []
        for shard in shards:
            (mine if self.stages.claim(shard.shard_id) else self.elsewhere).append(shard)
        done = self.stages.done(mine) if mine else set()
        for shard in mine:
            if shard.shard_id in done:
                self.stages.release(shard.shard_id)
                self.on_elsewhere(shard)
        return [shard for shard in mine if shard.shard_id not in done]

    def _next(self) -> tuple[Shard, int, bool] | None:
        """The next shard to submit (retries first, then new shards this driver leased, CLAIM_BATCH
        at a time), or None when there is none now."""
        if self.queue:
            return self.queue.popleft()
        while not self.claimed and self.upcoming is not None:
            batch = list(itertools.islice(self.upcoming, CLAIM_BATCH))
            if len(batch) < CLAIM_BATCH:
                self.upcoming = None
            self.claimed.extend(self._claim(batch))
        return (self.claimed.popleft(), 1, False) if self.claimed else None

    def _fill(self) -> None:
        while len(self.in_flight) < self.max_in_flight:
            if self.in_flight and ((self.queue and self.queue[0][2]) or any(j.alone for j in self.in_flight.values())):
                return  # a suspect runs alone
            item = self._next()
            if item is None:
                return
            self._submit(*item)

    def _submit(self, shard: Shard, attempt: int, alone: bool) -> None:
        load: dict[int, int] = {}
        for job in self.in_flight.values():
            load[id(job.actor)] = load.get(id(job.actor), 0) + 1
        actor = self.pool.pick(load)
        d = self.stages.decode(shard)
        n = self.stages.network(actor, d)
        w = self.stages.commit(n)
        self.in_flight[w] = InFlight(shard, {"decode": d, "network": n, "write": w}, actor, attempt, alone)

    def _finish(self, job: InFlight, ref) -> None:
        try:
            result: ShardResult = self.stages.get(ref)
        except Exception:  # noqa: BLE001
            self._failed(job)
            return
        self.unavailable_since.pop(job.shard.shard_id, None)
        self.stages.release(job.shard.shard_id)
        self.on_result(job.shard, result)
        self.stages.track(job.shard)

    def _failed(self, job: InFlight) -> None:
        """A shard whose stage was only out of reach is tried again after UNAVAILABLE_RETRY_S, for up
        to UNAVAILABLE_WINDOW_S, without counting; a shard whose actor died is retried alone (a crash
        also fails the innocent calls queued on that actor); only a failure while alone, or a plain
        exception, counts as an attempt."""
        stage, exc = job.failure(self.stages.error)
        if self.stages.unavailable(stage, exc):
            now = time.monotonic()
            if now - self.unavailable_since.setdefault(job.shard.shard_id, now) < UNAVAILABLE_WINDOW_S:
                self.later.append((now + UNAVAILABLE_RETRY_S, (job.shard, job.attempt, job.alone)))
                return
        died = self.stages.died(stage, exc)
        if died:
            self.pool.drop(job.actor)
        if died and not job.alone:
            self.queue.appendleft((job.shard, job.attempt, True))
        elif job.attempt <= self.shard_retries:
            self.queue.append((job.shard, job.attempt + 1, job.alone))
        else:
            self.unavailable_since.pop(job.shard.shard_id, None)
            self.stages.failed(job.shard, stage, exc, job.attempt)
            self.stages.release(job.shard.shard_id)
            self.on_failed(job.shard)


def failed_shard_errors(shard: Shard, stage: str, exc: BaseException, attempts: int) -> list[ErrorRecord]:
    """One errors row per source of a shard that failed ``attempts`` times at ``stage``. The shard is
    not committed as done, so the rows are ``retryable``: the next run tries the shard again."""
    what = f"frames {shard.frames.start}..{shard.frames.stop - 1} " if shard.frames is not None else ""
    last = str(exc).strip().splitlines()[-1] if str(exc).strip() else ""
    return [ErrorRecord(
        input=src.uri, stage=stage, error_type=type(exc).__name__,
        message=(f"{src.uri}: {what}failed in the {stage} stage {attempts} times ({type(exc).__name__}: {last}); "
                 "the rest of the job went on; run the job again to retry this shard"),
        shard_id=shard.shard_id, attempts=attempts, retryable=True,
        frame_index=shard.frames.start if shard.frames is not None else 0) for src in shard.sources]
