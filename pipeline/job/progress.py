"""The live progress line on stderr and the end-of-job summary numbers."""
from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, field
from typing import TextIO


@dataclass
class JobSummary:
    """Totals of one run. frames/people/errors/pending count everything committed in the output
    (from the shard_log, skipped shards included); frames_per_s counts only frames processed in
    this run; stage_seconds sums worker time per stage. pending: inputs left to retry (retryable
    errors and failed shards) -- the next run does them. shards_by_other_drivers: shards planned
    here that another driver on the same output leased and committed. executor: "ray" or "inline".
    status: "complete", "complete_with_errors" (content errors only), "incomplete" (something is
    pending) or "running"."""

    output: str
    status: str = "running"
    #: where the stages ran: "ray" or "inline" (pipeline.job.execute)
    executor: str = ""
    shards_total: int = 0
    shards_skipped: int = 0
    shards_done: int = 0
    shards_failed: int = 0
    shards_failed_sources: int = 0
    shards_by_other_drivers: int = 0
    frames: int = 0
    people: int = 0
    errors: int = 0
    pending: int = 0
    pruned_sources: int = 0
    tracking_failed: int = 0
    unrecorded_errors: int = 0
    last_write_error: str | None = None
    frames_this_run: int = 0
    people_this_run: int = 0
    errors_this_run: int = 0
    elapsed_s: float = 0.0
    frames_per_s: float = 0.0
    stage_seconds: dict = field(default_factory=lambda: {"decode": 0.0, "network": 0.0, "parse": 0.0, "write": 0.0})
    #: label-free quality figures (pipeline.job.summary.quality_from_log)
    quality: dict | None = None
    #: {"videos_tracked", "tracks"}
    tracking: dict | None = None
    #: {format: {"dest", "files_written", "ok"}} of the spec's exports
    exports: dict = field(default_factory=dict)

    def add_result(self, shard, result) -> None:
        """Count a committed shard (a pipeline.job.records.ShardResult)."""
        self.shards_done += 1
        self.frames_this_run += result.frames
        self.people_this_run += result.people
        self.errors_this_run += result.errors
        for k, v in result.seconds.items():
            self.stage_seconds[k] = self.stage_seconds.get(k, 0.0) + v

    def add_failed(self, shard) -> None:
        """Count a shard that gave up (its sources are pending)."""
        self.shards_failed += 1
        self.shards_failed_sources += len(shard.sources)
        self.errors_this_run += len(shard.sources)

    def add_elsewhere(self, shard) -> None:
        """Count a planned shard that another driver on the same output committed (shard leases)."""
        self.shards_by_other_drivers += 1

    def to_dict(self) -> dict:
        return asdict(self)


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class Progress:
    """Redraws one status line (shards done/total, frames/s, people, errors, ETA) on ``stream``.

    On a terminal the line is rewritten in place; otherwise a line is printed at most every
    ``interval_s`` seconds so logs stay short.
    """

    def __init__(self, summary: JobSummary, stream: TextIO | None = None, enabled: bool = True,
                 interval_s: float = 5.0):
        self.summary, self.stream, self.enabled = summary, stream or sys.stderr, enabled
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval_s = 0.2 if self.tty else interval_s
        self.t0 = time.monotonic()
        self._last = 0.0

    def line(self) -> str:
        s = self.summary
        elapsed = time.monotonic() - self.t0
        done = s.shards_skipped + s.shards_done + s.shards_failed + s.shards_by_other_drivers
        fps = s.frames_this_run / elapsed if elapsed > 0 else 0.0
        run_done = s.shards_done + s.shards_failed
        left = s.shards_total - done
        eta = "--:--:--" if run_done == 0 else _clock(elapsed / run_done * left)
        return (f"[posepipe] shards {done}/{s.shards_total} | {fps:.1f} frames/s | {s.people_this_run} people | "
                f"{s.errors_this_run} errors | ETA {eta}")

    def update(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < self.interval_s:
            return
        self._last = now
        if self.tty:
            self.stream.write("\r" + self.line().ljust(100))
        else:
            self.stream.write(self.line() + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.update(force=True)
            if self.tty:
                self.stream.write("\n")
            self.stream.flush()
