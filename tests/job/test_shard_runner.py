"""The shard runner (pipeline.job.shard_runner) on plain concurrent.futures handles, as the inline
executor gives them: leases claimed in batches with one shard_log query each, shards of other
drivers, retries and final failures."""
from __future__ import annotations

from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

import pytest

from pipeline.job import shard_runner
from pipeline.job.pool import ActorPool
from pipeline.job.records import Shard, Source
from pipeline.job.shard_runner import ShardRunner, Stages


class Unreachable(RuntimeError):
    """What the stand-in commit stage raises while its worker is out of reach."""


def _shards(n: int) -> list[Shard]:
    return [Shard(f"s{i:03d}", "images", (Source(f"/in/{i:03d}.jpg", "image", 1, "e", f"id{i}"),)) for i in range(n)]


class World:
    """Stages over a thread pool; ``network(shard)`` is what the network stage does with a shard
    (raise to fail it). Records every call the runner makes."""

    def __init__(self, held_by_other=(), committed_by_other=(), network=lambda shard: shard.shard_id,
                 commit=lambda result: result):
        self.pool = ThreadPoolExecutor(2)
        self.held, self.committed = set(held_by_other), set(committed_by_other)
        self.network_fn, self.commit_fn = network, commit
        self.done_queries, self.released, self.failed, self.computed = [], [], [], []

    def claim(self, shard_id: str) -> bool:
        return shard_id not in self.held

    def done(self, shards: list[Shard]) -> set:
        self.done_queries.append(len(shards))
        return {s.shard_id for s in shards if s.shard_id in self.committed}

    def compute(self, shard: Shard):
        self.computed.append(shard.shard_id)
        return self.network_fn(shard)

    def stages(self) -> Stages:
        return Stages(
            decode=lambda shard: self.pool.submit(lambda: shard),
            network=lambda actor, d: self.pool.submit(lambda: self.compute(d.result())),
            commit=lambda n: self.pool.submit(lambda: self.commit_fn(n.result())),
            wait=lambda handles, timeout_s: list(wait(handles, timeout_s, FIRST_COMPLETED).done),
            get=lambda h: h.result(), error=lambda h: h.exception(timeout=0), died=lambda stage, exc: False,
            unavailable=lambda stage, exc: stage == "write" and isinstance(exc, Unreachable),
            failed=lambda shard, stage, exc, attempts: self.failed.append((shard.shard_id, stage, attempts)),
            done=self.done, track=lambda shard: None, claim=self.claim, release=self.released.append)

    def run(self, shards: list[Shard], retries: int = 1) -> tuple[list, list]:
        results, others = [], []
        runner = ShardRunner(self.stages(), ActorPool(lambda: "net", 1, lambda n: False, lambda a: None), 3, retries,
                             on_result=lambda shard, r: results.append(r), on_failed=lambda shard: None,
                             tick=lambda: None, on_elsewhere=lambda shard: others.append(shard.shard_id))
        runner.run(iter(shards))
        self.pool.shutdown()
        return results, others


def test_new_shards_are_claimed_in_batches_with_one_done_query_each():
    shards = _shards(40)
    world = World(committed_by_other={"s005", "s020"})
    results, others = world.run(shards)
    assert world.done_queries == [16, 16, 8]  # 40 shards: 3 queries, not 40
    assert sorted(others) == ["s005", "s020"]  # committed by another driver since planning: not computed
    assert sorted(results) == sorted(s.shard_id for s in shards if s.shard_id not in ("s005", "s020"))
    assert sorted(world.computed) == sorted(results)
    assert sorted(world.released) == sorted(s.shard_id for s in shards)  # every lease given back


def test_a_shard_another_driver_holds_is_left_to_it_until_committed(monkeypatch):
    monkeypatch.setattr(shard_runner, "DONE_REFRESH_S", 0.05)
    world = World(held_by_other={"s001"})
    real_done = world.done

    def done(shards):  # the other driver commits s001 once it has been asked about twice
        if len(world.done_queries) >= 2:
            world.committed.add("s001")
        return real_done(shards)

    world.done = done
    results, others = world.run(_shards(3))
    assert sorted(results) == ["s000", "s002"] and others == ["s001"] and "s001" not in world.computed


@pytest.mark.parametrize("fail_times, expect_failed", [(1, []), (5, [("s001", "network", 2)])])
def test_a_failing_shard_is_retried_then_recorded(fail_times, expect_failed):
    attempts = {}

    def network(shard):
        attempts[shard.shard_id] = attempts.get(shard.shard_id, 0) + 1
        if shard.shard_id == "s001" and attempts[shard.shard_id] <= fail_times:
            raise OSError("transient")
        return shard.shard_id

    world = World(network=network)
    results, _ = world.run(_shards(3), retries=1)
    assert world.failed == expect_failed
    assert sorted(results) == (["s000", "s001", "s002"] if not expect_failed else ["s000", "s002"])
    assert attempts["s001"] == min(fail_times + 1, 2)


@pytest.mark.parametrize("window_s, unreachable_times, expect_done", [(60.0, 6, True), (0.3, 10**6, False)])
def test_an_unreachable_commit_is_tried_again_later_without_counting(monkeypatch, window_s, unreachable_times,
                                                                     expect_done):
    """A commit whose worker is out of reach (the commit actor restarting after its node was lost)
    is tried again every UNAVAILABLE_RETRY_S without using up the shard's attempts, until
    UNAVAILABLE_WINDOW_S has passed; then it counts as a failure like any other."""
    monkeypatch.setattr(shard_runner, "UNAVAILABLE_RETRY_S", 0.05)
    monkeypatch.setattr(shard_runner, "UNAVAILABLE_WINDOW_S", window_s)
    calls = []

    def commit(result):
        calls.append(result)
        if result == "s001" and calls.count("s001") <= unreachable_times:
            raise Unreachable("the commit actor is temporarily unavailable")
        return result

    world = World(commit=commit)
    results, _ = world.run(_shards(3), retries=0)  # no attempts to spare: only the window helps
    if expect_done:
        assert sorted(results) == ["s000", "s001", "s002"] and world.failed == [] and calls.count("s001") == 7
    else:
        assert sorted(results) == ["s000", "s002"] and world.failed == [("s001", "write", 1)]
