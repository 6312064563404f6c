"""Shard leases: drivers that run the same job on one output split its shards instead of all
computing every shard.

Before a driver submits a shard it creates ``<output>/_posepipe/leases/<shard_id>.json`` with an
exclusive create (``O_EXCL`` on a local disk, ``If-None-Match: *`` on S3 through s3fs), holding its
driver id, host, pid and an expiry time. A driver that finds another's lease leaves the shard for
later: once that shard is committed it is dropped, once the lease has expired (its driver died or
hangs) it is taken over -- at once when the lease's driver ran on this machine and its process is
gone (a killed run, re-run). A driver renews the leases of its shards in flight and removes each after the
shard's commit. Leases only save work; exactly-once rows come from the commit protocol alone
(pipeline.job.sink), so a lost, stale or unwritable lease never changes what the tables hold.
"""
from __future__ import annotations

import json
import os
import socket
import time
from posixpath import join
from typing import Any, Callable, Iterable, Mapping

from pipeline.storage import filesystem

LEASE_S = 600.0  # a lease not renewed for this long is taken over (renewed every LEASE_S / 3)


def _alive(pid: Any) -> bool:
    """Whether process ``pid`` of this machine exists."""
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, TypeError, ValueError, OverflowError):
        return True  # someone else's process, or not a pid: assume alive
    return True


class Leases:
    """The lease folder of one output, for one driver: ``driver_id`` defaults to this process
    ("host:pid"), so a job run again in the same process owns the leases an earlier run left.
    A lease whose driver ran on this machine and whose process is gone (a killed driver) is taken
    over at once; others when they expire. ``clock``: seconds since the epoch (time.time); leases
    compare clocks of different machines, so the expiry is long against clock skew."""

    def __init__(self, output: str, storage_options: Mapping[str, Any] | None = None, *,
                 driver_id: str | None = None, lease_s: float = LEASE_S, clock: Callable[[], float] = time.time):
        self.fs, root = filesystem(output, storage_options)
        self.root = join(root.rstrip("/"), "_posepipe", "leases")
        self.host, self.pid = socket.gethostname(), os.getpid()
        self.driver, self.lease_s, self.clock = driver_id or f"{self.host}:{self.pid}", lease_s, clock
        self.fs.makedirs(self.root, exist_ok=True)

    def _path(self, shard_id: str) -> str:
        return join(self.root, f"{shard_id}.json")

    def _body(self) -> bytes:
        return json.dumps({"driver": self.driver, "expires": self.clock() + self.lease_s, "host": self.host,
                           "pid": self.pid}).encode()

    def holder(self, shard_id: str) -> dict | None:
        """{"driver", "expires"} of the shard's lease, or None when there is none (or it is unreadable)."""
        try:
            with self.fs.open(self._path(shard_id), "rb") as f:
                held = json.loads(f.read())
            return held if isinstance(held, dict) and {"driver", "expires"} <= held.keys() else None
        except (OSError, ValueError):
            return None

    def _create(self, shard_id: str) -> bool:
        try:
            with self.fs.open(self._path(shard_id), "xb") as f:
                f.write(self._body())
            return True
        except FileExistsError:
            return False

    def claim(self, shard_id: str) -> bool:
        """True when this driver now holds the shard's lease: newly created, already its own, or
        taken over from an expired, unreadable or dead driver's one; False while another driver's
        lease is live."""
        if self._create(shard_id):
            return True
        held = self.holder(shard_id)
        if held is not None and held["driver"] == self.driver:
            return True
        dead = held is not None and held.get("host") == self.host and not _alive(held.get("pid"))
        if held is not None and not dead and float(held["expires"]) > self.clock():
            return False
        self.release(shard_id)
        return self._create(shard_id)

    def renew(self, shard_ids: Iterable[str]) -> None:
        """Push the expiry of this driver's leases of ``shard_ids`` forward by ``lease_s``."""
        for shard_id in shard_ids:
            with self.fs.open(self._path(shard_id), "wb") as f:
                f.write(self._body())

    def release(self, shard_id: str) -> None:
        """Remove the shard's lease (nothing if there is none)."""
        try:
            self.fs.rm(self._path(shard_id))
        except FileNotFoundError:
            pass
