"""Ray processes left behind by a killed driver: each in-process Ray that posepipe starts is
recorded (driver pid -> Ray session folder); the next run ends the processes of recorded sessions
whose driver is gone. Clusters started with ``ray start`` are never recorded, never touched."""
from __future__ import annotations

import json
import os
import signal
import tempfile
import time
from pathlib import Path

RECORDS = Path(os.environ.get("POSEPIPE_RUNTIME_DIR", Path(tempfile.gettempdir()) / "posepipe-drivers"))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (tells a process from a later one with the same pid)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _children() -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        out.setdefault(ppid, []).append(int(proc.name))
    return out


def _descendants(roots: list[int]) -> list[int]:
    children, out, todo = _children(), [], list(roots)
    while todo:
        pid = todo.pop()
        if pid not in out:
            out.append(pid)
            todo.extend(children.get(pid, []))
    return out


def record_session(session_dir: str) -> Path:
    """Note that this process drives the in-process Ray of ``session_dir``, with the processes Ray
    started for it (daemons and agents, which outlive a killed driver); returns the record."""
    RECORDS.mkdir(parents=True, exist_ok=True)
    path = RECORDS / f"{os.getpid()}.json"
    started = [p for p in _descendants([os.getpid()]) if p != os.getpid()]
    path.write_text(json.dumps({"pid": os.getpid(), "session_dir": session_dir,
                                "processes": {str(p): _start_time(p) for p in started}}))
    return path


def forget_session() -> None:
    """Drop this process's record (its Ray was shut down cleanly)."""
    (RECORDS / f"{os.getpid()}.json").unlink(missing_ok=True)


def _processes_of(record: dict) -> list[int]:
    """The recorded processes of a session still running (same start time), the processes whose
    command line names its session folder, and their descendants (the raylet's workers)."""
    needle = record["session_dir"].encode()
    found = [int(p) for p, t in record.get("processes", {}).items() if t and _start_time(int(p)) == t]
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if needle in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return _descendants(found)


def reap_orphans(grace_s: float = 2.0) -> list[int]:
    """End the processes of recorded in-process Ray sessions whose driver died; returns their pids.
    Only processes whose command line names the recorded session folder are signalled."""
    if not RECORDS.is_dir():
        return []
    victims: list[int] = []
    for record in RECORDS.glob("*.json"):
        try:
            body = json.loads(record.read_text())
        except (OSError, ValueError):
            continue
        if _alive(int(body["pid"])):
            continue
        pids = _processes_of(body)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and any(_alive(p) for p in pids):
            time.sleep(0.1)
        for pid in pids:
            if _alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        victims += pids
        record.unlink(missing_ok=True)
    return victims
