"""The network and assemble+commit stages as plain classes/functions (Ray wraps them in
pipeline.job.execute; the decode stage is pipeline.job.decode).

network (actor):          run the PAF network on the decode stage's uint8 canvases and find limb
                          candidates (pipeline.parsing.find_candidates, or on the GPU the runner's
                          candidates_prepared) -> CandidateShard: only compact candidates leave the
                          actor, never full maps.
assemble (CPU task):      pipeline.parsing.assemble -> Poses -> the shard's rows (ShardRows).
commit (one actor):       commit_rows: the rows of every shard that arrived while the previous
                          commit ran, in one Delta commit per table (group commit).

Every failure tied to one input becomes an ErrorRecord; the rest of the shard goes on.
"""
from __future__ import annotations

import dataclasses
import functools
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from pipeline.job.records import CandidateShard, DecodedShard, ErrorRecord, ShardResult
from pipeline.job.rows import RowContext, log_rows, shard_predicates, shard_tables
from pipeline.job.sink import DeltaSink


# ---------------------------------------------------------------------------------------- network
def default_runner_factory(**kwargs):
    """pipeline.models.inference.PoseNetRunner(**kwargs): images -> list[PoseFields]."""
    from pipeline.models.inference import PoseNetRunner

    return PoseNetRunner(**kwargs)


def default_preparer(model: str, scales, flip: bool):
    """images -> network input passes for registry model ``model`` (its weights entry's torch-free
    preprocessing, shape-bucketed), to run in the CPU decode workers."""
    from pipeline.models import get

    return functools.partial(get(model).preprocessing.prepare, scales=tuple(scales), flip=flip)


class NetworkStage:
    """Holds one network runner (built once per actor) and turns a DecodedShard into a CandidateShard.

    runner_factory(**runner_kwargs) must return a callable: list of uint8 BGR [H, W, 3] images ->
    list of PoseFields (and, for shards preprocessed by the decode worker, ``infer_prepared(passes)``,
    as pipeline.models.inference.PoseNetRunner has; a runner whose ``candidates_on_device`` is true
    gives ``candidates_prepared(passes, parse_config)`` instead, found on the GPU next to the maps).
    parse_config: the ParseConfig for find_candidates.
    """

    def __init__(self, runner_factory: Callable[..., Any] | None, runner_kwargs: Mapping[str, Any], parse_config):
        self.runner = (runner_factory or default_runner_factory)(**dict(runner_kwargs))
        self.parse_config = parse_config
        self.runner_finds_candidates = bool(getattr(self.runner, "candidates_on_device", False))

    def _infer(self, decoded: DecodedShard, only: int | None = None) -> list:
        """Per frame of ``decoded`` (or of frame ``only``): LimbCandidates when the runner finds them
        itself (``candidates_prepared``, e.g. on the GPU), else PoseFields."""
        if decoded.passes is not None:
            passes = decoded.passes if only is None else [[p[only]] for p in decoded.passes]
            if self.runner_finds_candidates:
                return list(self.runner.candidates_prepared(passes, self.parse_config))
            return list(self.runner.infer_prepared(passes))
        return list(self.runner(decoded.images if only is None else [decoded.images[only]]))

    def _outputs(self, decoded: DecodedShard):
        """(network output or None per frame, [(frame, exception)]); if the whole batch fails, each
        frame is retried alone to find the one(s) at fault."""
        try:
            return self._infer(decoded), []
        except Exception:  # noqa: BLE001
            pass
        outputs, bad = [], []
        for i in range(len(decoded.frames)):
            try:
                outputs.append(self._infer(decoded, i)[0])
            except Exception as exc:  # noqa: BLE001
                outputs.append(None)
                bad.append((i, exc))
        return outputs, bad

    def __call__(self, decoded: DecodedShard) -> CandidateShard:
        from pipeline.parsing import find_candidates

        t0 = time.perf_counter()
        sid = decoded.shard.shard_id
        errors = list(decoded.errors)
        outputs, bad = self._outputs(decoded) if decoded.frames else ([], [])
        for i, exc in bad:
            fm = decoded.frames[i]
            errors.append(ErrorRecord.from_exception(
                fm.source_uri, "network", exc,
                f"{fm.source_uri} frame {fm.frame_index}: the network failed on this image ({type(exc).__name__}: "
                f"{exc}); check the image or report it with the model name", shard_id=sid))
        t1 = time.perf_counter()
        inferred = [(fm, out) for fm, out in zip(decoded.frames, outputs) if out is not None]
        if decoded.passes is not None and self.runner_finds_candidates:
            frames, cands = [fm for fm, _ in inferred], [c for _, c in inferred]
        else:
            frames, cands = per_frame(lambda f: find_candidates(f, self.parse_config), inferred,
                                      "finding keypoint candidates", sid, errors)
        t2 = time.perf_counter()
        return CandidateShard(decoded.shard, frames, cands, errors, decode_seconds=decoded.seconds,
                              network_seconds=t1 - t0, candidate_seconds=t2 - t1)


def per_frame(fn, items: list, what: str, shard_id: str, errors: list) -> tuple[list, list]:
    """Apply ``fn`` to the payload of each (frame, payload) in ``items``; returns (frames, results) of
    the frames where it worked. A frame where it raised becomes a "parse"-stage ErrorRecord in
    ``errors`` ("<what> failed") and is left out, so one bad frame never fails its shard."""
    frames, results = [], []
    for fm, x in items:
        try:
            results.append(fn(x))
            frames.append(fm)
        except Exception as exc:  # noqa: BLE001
            errors.append(ErrorRecord.from_exception(
                fm.source_uri, "parse", exc, f"{fm.source_uri} frame {fm.frame_index}: {what} failed "
                f"({type(exc).__name__}: {exc})", shard_id=shard_id))
    return frames, results


# ------------------------------------------------------------------------------ assemble + commit
@dataclass
class ShardRows:
    """One shard's rows, ready to commit: its tables, the predicates of the old rows they replace,
    its shard_log rows, and its ShardResult (``result.seconds["write"]`` is filled by the commit)."""

    shard_id: str
    tables: dict
    predicates: dict
    log: Any
    result: ShardResult


def assemble_rows(cands: CandidateShard, ctx: RowContext, parse_config) -> ShardRows:
    """Assemble people from the shard's candidates and build its rows (a CPU task)."""
    from pipeline.parsing import assemble

    t0 = time.perf_counter()
    sid = cands.shard.shard_id
    errors = list(cands.errors)
    frames, poses_list = per_frame(lambda c: assemble(c, parse_config),
                                   list(zip(cands.frames, cands.candidates)), "assembling people", sid, errors)
    rows = shard_tables(frames, poses_list, cands.shard, ctx, errors)
    seconds = {"decode": cands.decode_seconds, "network": cands.network_seconds,
               "parse": cands.candidate_seconds + (time.perf_counter() - t0)}
    result = ShardResult(sid, "pending" if any(e.retryable for e in errors) else "done", len(frames),
                         rows["poses"].num_rows, len(errors), sum(e.retryable for e in errors), seconds)
    return ShardRows(sid, rows, shard_predicates(cands.shard), log_rows(cands.shard, rows, errors, ctx, seconds),
                     result)


def commit_rows(sink: DeltaSink, batch: Sequence[ShardRows]) -> list[ShardResult]:
    """Commit the shards of ``batch`` together (pipeline.job.sink protocol, one commit per table
    for all of them); if that fails and there are several, each is committed alone, so one shard's
    failure is only its own. Returns one ShardResult per shard, or raises the first failure of a
    shard committed alone."""
    t0 = time.perf_counter()
    try:
        sink.commit_shards([(r.tables, r.predicates, r.log, r.shard_id) for r in batch])
    except Exception:
        if len(batch) == 1:
            raise
        return [commit_rows(sink, [r])[0] for r in batch]
    per_shard = (time.perf_counter() - t0) / len(batch)
    return [dataclasses.replace(r.result, seconds={**r.result.seconds, "write": per_shard}) for r in batch]
