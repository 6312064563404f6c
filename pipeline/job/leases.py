"""Shard leases: drivers that run the same job on one output split its shards instead of all
computing every shard.

Before a driver submits a shard it creates ``<output>/_posepipe/leases/<shard_id>.json`` with an
exclusive create (``O_EXCL`` on a local disk, ``If-None-Match: *`` on S3 through s3fs), holding its
driver id and an expiry time. A driver that finds another's lease leaves the shard for later:
once that shard is committed it is dropped, once the lease has expired (its driver died or hangs)
it is taken over. A driver renews the leases of its shards in flight and removes each after the
shard's commit. Leases only save work; exactly-once rows come from the commit protocol alone
(pipeline.job.sink), so a lost, stale or unwritable lease never changes what the tables hold.
"""
from __future__ import annotations

import json
import time
import uuid
from posixpath import join
from typing import Any, Callable, Iterable, Mapping

from pipeline.storage import filesystem

LEASE_S = 600.0  # a lease not renewed for this long is taken over (renewed every LEASE_S / 3)


class Leases:
    """The lease folder of one output, for one driver (``driver_id``: a random id by default).
    ``clock``: seconds since the epoch (time.time); leases compare clocks of different machines,
    so the expiry is long against clock skew."""

    def __init__(self, output: str, storage_options: Mapping[str, Any] | None = None, *,
                 driver_id: str | None = None, lease_s: float = LEASE_S, clock: Callable[[], float] = time.time):
        self.fs, root = filesystem(output, storage_options)
        self.root = join(root.rstrip("/"), "_posepipe", "leases")
        self.driver, self.lease_s, self.clock = driver_id or uuid.uuid4().hex, lease_s, clock
        self.fs.makedirs(self.root, exist_ok=True)

    def _path(self, shard_id: str) -> str:
        return join(self.root, f"{shard_id}.json")

    def _body(self) -> bytes:
        return json.dumps({"driver": self.driver, "expires": self.clock() + self.lease_s}).encode()

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
        taken over from an expired or unreadable one; False while another driver's lease is live."""
        if self._create(shard_id):
            return True
        held = self.holder(shard_id)
        if held is not None and held["driver"] == self.driver:
            return True
        if held is not None and float(held["expires"]) > self.clock():
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
