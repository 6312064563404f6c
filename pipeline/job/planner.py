"""Streamed planning: the listing in pages -> each page's unfinished sources -> shards.

The driver holds one page of sources (``PAGE_SOURCES``) at a time, whatever the job's size. A
page's finished work is looked up in the shard_log rows of the page's URI range only (the log's
file statistics on ``source_uri`` let delta-rs skip every other log file), and the same rows show
which earlier inputs are gone: a logged URI under the input, inside the range the listing has
passed, that the listing did not give. Listings come sorted by URI (pipeline.job.listing), which
is what makes the ranges of consecutive pages adjacent; a listing found out of order is still
planned correctly, but its removed inputs are then not pruned.
"""
from __future__ import annotations

import fnmatch
import functools
import os
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

from pipeline.job.listing import iter_sources
from pipeline.job.records import ErrorRecord, Shard, Source
from pipeline.job.rows import RowContext
from pipeline.job.shards import plan
from pipeline.job.sink import DeltaSink
from pipeline.job.spec import JobSpec
from pipeline.job.track_task import tracking_current
from pipeline.storage import is_remote, split_literal

PAGE_SOURCES = 10_000  # sources per listing page (the driver's planning memory is bounded by this)
_LOG_COLUMNS = ["shard_id", "source_uri", "source_id", "kind", "status", "poses_version"]


@dataclass(frozen=True)
class _Under:
    """Whether a stored URI belongs to one job input: ``prefix`` every such URI starts with (a
    folder, a file, the part of a glob before its first wildcard); ``pattern``: the glob, if any."""

    prefix: str
    pattern: str | None = None

    def __call__(self, uri: str) -> bool:
        if self.pattern is not None:
            return fnmatch.fnmatchcase(uri, self.pattern)
        return uri == self.prefix or uri.startswith((self.prefix + "/", self.prefix + "#"))


def _under(item: str) -> _Under:
    """The :class:`_Under` test of job input ``item``, in the URI form the tables store."""
    target, literal = split_literal(item)
    if not is_remote(target):
        target = os.path.abspath(target[len("file://"):] if target.startswith("file://") else target)
    cut = min((target.find(c) for c in "*?[" if c in target), default=-1)
    if not literal and cut >= 0 and not os.path.lexists(target):
        return _Under(target[:cut], target)
    return _Under(target.rstrip("/"))


def _after(prefix: str) -> str:
    """The smallest string greater than every string starting with ``prefix``."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1) if prefix else "\U0010ffff"


@dataclass
class PlanTotals:
    """What planning found, for the summary: listing and planning errors, sources listed, shards
    finished earlier (skipped), removed inputs (``gone``: URIs, pruned only after a listing without
    errors) and whether every listing came in order (else nothing is pruned)."""

    errors: list[ErrorRecord] = field(default_factory=list)
    plan_errors: list[ErrorRecord] = field(default_factory=list)
    sources: int = 0
    shards_skipped: int = 0
    shards_planned: int = 0
    gone: list[str] = field(default_factory=list)
    in_order: bool = True
    listing_done: bool = False


class Planner:
    """``shards()`` streams the job's unfinished shards (image shards of each page, then each
    page's videos' shards); ``totals`` fills in as it goes. ``map_fn`` runs the per-video probing
    (a parallel map: the job passes Ray tasks); ``on_planned(shards)`` sees each page's shards,
    finished ones included, before any of them is yielded (so a video's shards are known before
    its first one runs)."""

    def __init__(self, sink: DeltaSink, spec: JobSpec, ctx: RowContext,
                 map_fn: Callable[[Callable, list], Iterable] = map,
                 on_planned: Callable[[list[Shard]], None] = lambda shards: None, page_sources: int = PAGE_SOURCES):
        self.sink, self.spec, self.page_sources, self.on_planned = sink, spec, page_sources, on_planned
        self.totals = PlanTotals()
        self._skipped_before: set[str] = set()  # the previous page's finished shards
        self._plan = functools.partial(
            plan, images_per_shard=spec.images_per_shard, frames_per_shard=spec.frames_per_shard,
            frame_step=spec.frame_step, model_id=ctx.model_id, config_id=ctx.config_id,
            storage_options=spec.storage_options, map_fn=map_fn, target_fps=spec.target_fps,
            start_s=spec.start_s, end_s=spec.end_s)

    def shards(self) -> Iterator[Shard]:
        """Every shard with work left, page by page (each page's log rows read when it is planned,
        so shards another driver finished meanwhile are skipped)."""
        seen: set | None = set() if len(self.spec.input) > 1 else None  # files named by two inputs
        earlier: list[_Under] = []  # inputs listed before: a URI under one of them is theirs to prune
        for item in self.spec.input:
            under, last = _under(item), None
            page: list[Source] = []
            for entry in iter_sources([item], self.spec.storage_options, seen=seen):
                if isinstance(entry, ErrorRecord):
                    self.totals.errors.append(entry)
                    continue
                page.append(entry)
                if len(page) >= self.page_sources:
                    yield from self._page(page, under, earlier, last)
                    last, page = max(last or "", page[-1].uri), []
            if page:
                yield from self._page(page, under, earlier, last)
                last = max(last or "", page[-1].uri)
            self._tail(under, earlier, last)
            earlier.append(under)
        self.totals.listing_done = True

    def _log_rows(self, filters: list) -> list[dict]:
        return self.sink.shard_log(_LOG_COLUMNS, filters).to_pylist()

    def _page(self, page: list[Source], under: "_Under", earlier: list["_Under"], last: str | None
              ) -> Iterator[Shard]:
        """The unfinished shards of one page of an input's listing (``page`` is sorted here;
        ``last``: the greatest URI of the input's previous pages, None before the first;
        ``earlier``: the inputs listed before this one)."""
        page.sort(key=lambda s: s.uri)
        lo, hi = page[0].uri, page[-1].uri
        if last is not None and lo <= last:
            self.totals.in_order = False
        low = [("source_uri", ">=", under.prefix)] if last is None else [("source_uri", ">", min(last, lo))]
        rows = self._log_rows(low + [("source_uri", "<=", hi)])
        self._note_gone((r["source_uri"] for r in rows), {s.uri for s in page}, under, earlier)
        self.totals.sources += len(page)
        done_rows = [r for r in rows if r["status"] == "done" and r["kind"] != "tracks"]
        done_images = {r["source_id"] for r in done_rows if r["kind"] == "images"}
        complete = tracking_current(rows) if self.spec.tracking else set()
        finished = {s.source_id for s in page if (s.kind == "image" and s.source_id in done_images)
                    or (s.kind == "video" and s.source_id in complete)}
        skipped = {r["shard_id"] for r in done_rows if r["source_id"] in finished}
        self.totals.shards_skipped += len(skipped - self._skipped_before)  # a shard across two pages counts once
        self._skipped_before = skipped
        shards, errors = self._plan([s for s in page if s.source_id not in finished])
        self.totals.plan_errors.extend(errors)
        self.on_planned(shards)
        done = {r["shard_id"] for r in done_rows}
        for shard in shards:
            if shard.shard_id in done:
                self.totals.shards_skipped += 1
            else:
                self.totals.shards_planned += 1
                yield shard

    def _tail(self, under: "_Under", earlier: list["_Under"], last: str | None) -> None:
        """Logged URIs of the input beyond its listing's last page (all of them if it listed nothing)."""
        low = [("source_uri", ">=", under.prefix)] if last is None else [("source_uri", ">", last)]
        rows = self._log_rows(low + [("source_uri", "<", _after(under.prefix))])
        self._note_gone((r["source_uri"] for r in rows), set(), under, earlier)

    def _note_gone(self, logged: Iterable[str], listed: set[str], under: "_Under", earlier: list["_Under"]) -> None:
        """Logged URIs under this input, not listed, and not under an input listed before it (a
        file named by two inputs is listed by the first, which also finds it gone)."""
        self.totals.gone.extend(sorted({u for u in logged if u not in listed and under(u)
                                        and not any(e(u) for e in earlier)}))

    def prunable(self) -> list[str]:
        """The removed inputs' URIs, when it is safe to delete their rows: the whole listing ran, in
        order, without errors (an unreachable folder never wipes its labels)."""
        ok = self.totals.listing_done and self.totals.in_order and not self.totals.errors
        return sorted(set(self.totals.gone)) if ok else []
