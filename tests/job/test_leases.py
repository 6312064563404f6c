"""Shard leases (pipeline.job.leases) on a local disk and on the moto S3 server: one holder at a
time, own leases re-claimable, expired ones and those of a dead local driver taken over,
renewals and releases."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pipeline.job.leases import Leases


class Clock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["local", "s3"])
def output(request, tmp_path):
    if request.param == "local":
        return str(tmp_path / "out"), None
    s3 = request.getfixturevalue("s3")
    fs = s3.fs()
    if not fs.exists("leases"):
        fs.mkdir("leases")
    return f"s3://leases/{tmp_path.name}", s3.options


def test_one_holder_then_release_and_expiry(output):
    out, options = output
    clock = Clock()
    a = Leases(out, options, driver_id="a", lease_s=60, clock=clock)
    b = Leases(out, options, driver_id="b", lease_s=60, clock=clock)
    assert a.claim("s1") and a.claim("s1")  # its own lease: still its own
    assert not b.claim("s1") and b.holder("s1")["driver"] == "a"
    assert b.claim("s2") and not a.claim("s2")
    a.release("s1")
    assert b.claim("s1") and b.holder("s1")["driver"] == "b"
    a.release("never-leased")  # nothing to remove: no error
    clock.now += 59
    assert not a.claim("s2")
    b.renew(["s2"])  # pushed to now + 60
    clock.now += 30
    assert not a.claim("s2")
    clock.now += 31  # b stopped renewing: expired, taken over
    assert a.claim("s2") and a.holder("s2")["driver"] == "a" and not b.claim("s2")


def test_a_dead_local_driver_s_lease_is_taken_over_at_once(output):
    out, options = output
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(gone.stdout)
    killed = Leases(out, options, driver_id="killed")
    killed.pid = dead_pid  # as if written by that (now ended) process
    assert killed.claim("s1")
    me = Leases(out, options)
    assert me.driver == f"{me.host}:{os.getpid()}"
    assert me.claim("s1") and me.holder("s1")["driver"] == me.driver
    other = Leases(out, options, driver_id="other")  # alive (this process): waits for expiry
    assert not other.claim("s1")
    assert Leases(out, options).claim("s1")  # a later run in the same process owns its leases
