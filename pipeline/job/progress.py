"""The live progress line on stderr and the end-of-job summary numbers."""
from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, field
from typing import TextIO


@dataclass
class JobSummary:
    """Totals of one run. frames/people/errors count every finished shard, skipped ones included;
    frames_per_s counts only frames processed in this run; stage_seconds sums worker time per stage."""

    output: str
    status: str = "running"  # "complete" | "complete_with_errors" | "running"
    shards_total: int = 0
    shards_skipped: int = 0
    shards_done: int = 0
    shards_failed: int = 0
    frames: int = 0
    people: int = 0
    errors: int = 0
    frames_this_run: int = 0
    elapsed_s: float = 0.0
    frames_per_s: float = 0.0
    stage_seconds: dict = field(default_factory=lambda: {"decode": 0.0, "network": 0.0, "parse": 0.0, "write": 0.0})
    #: pipeline.evaluation.quality_summary of the whole output (people per frame, scores, empty frames)
    quality: dict | None = None

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
        done = s.shards_skipped + s.shards_done + s.shards_failed
        fps = s.frames_this_run / elapsed if elapsed > 0 else 0.0
        run_done = s.shards_done + s.shards_failed
        left = s.shards_total - done
        eta = "--:--:--" if run_done == 0 else _clock(elapsed / run_done * left)
        return (f"[posepipe] shards {done}/{s.shards_total} | {fps:.1f} frames/s | {s.people} people | "
                f"{s.errors} errors | ETA {eta}")

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
