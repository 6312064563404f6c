"""A real multi-process Ray cluster and a real S3 endpoint (moto server), both on this machine.

``ray_cluster`` (one per test module: ``ray start`` is slow) is a head node with the dashboard /
Jobs API plus one worker node, each a separate ``ray start --block`` process tree with its own
temp dir and ports. Teardown kills exactly those process trees -- never ``ray stop``, which would
also stop the Ray instances of other test runs on the same machine.

The cluster runs with Ray token authentication and a token of its own (``RAY_AUTH_MODE=token``,
``RAY_AUTH_TOKEN``), so it does not depend on whatever ~/.ray/auth_token holds; ``cluster.env``
is the environment a client (``posepipe submit``) needs. The pytest process itself makes no Ray
calls: it stays free of Ray's process-wide auth settings.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

RAY = str(Path(sys.executable).with_name("ray"))


def process_tree(root_pid: int) -> list[int]:
    """``root_pid`` and all its descendants (Linux /proc), parents first."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        ppid = int(text.rsplit(")", 1)[1].split()[1])  # field 4, after the "(comm)" field
        children.setdefault(ppid, []).append(int(stat.parent.name))
    tree, todo = [], [root_pid]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


_GIVEN_PORTS: set[int] = set()


def free_port() -> int:
    """A TCP port nobody listens on right now (127.0.0.1), never one this session handed out before.

    The kernel may hand a just-closed ephemeral port out again at once, and one node's eight ports are all
    chosen before Ray binds any of them: without the memory of given ports two of a node's components can
    get the same port (Ray then refuses to start: "port ... used by other components").
    """
    for _ in range(1000):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _GIVEN_PORTS:
            _GIVEN_PORTS.add(port)
            return port
    raise RuntimeError("no free TCP port on 127.0.0.1 that was not handed out already")


@dataclass
class RayNode:
    """One ``ray start --block`` process (its children are the node's raylet, agents and workers)."""

    name: str
    process: subprocess.Popen
    log_path: Path

    def kill(self) -> None:
        """SIGKILL the node's whole process tree at once, as if the machine had died."""
        # Stop the tree first so nothing spawns or reparents while it is being killed.
        tree = process_tree(self.process.pid)
        for sig in (signal.SIGSTOP, signal.SIGKILL):
            for pid in tree:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
        self.process.wait(timeout=30)

    def log_tail(self, n: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])


class LocalRayCluster:
    """Head + worker Ray nodes on 127.0.0.1, each started by its own ``ray start --block``.

    dashboard_url: the Jobs API address (http://127.0.0.1:<port>), what ``posepipe submit --address`` takes.
    env:           environment of the nodes and of any client (holds the cluster's auth token, and the
                   nodes' own S3 credentials from ``node_env``).
    """

    def __init__(self, root: Path, head_cpus: int = 2, worker_cpus: int = 1, node_env: dict | None = None):
        self.root = root
        self.head_cpus, self.worker_cpus = head_cpus, worker_cpus
        self.gcs_port = free_port()
        self.dashboard_url = f"http://127.0.0.1:{free_port()}"
        self.nodes: list[RayNode] = []
        self.token = secrets.token_hex(32)
        self.env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=self.token)
        # What a cluster config gives its nodes (on AWS: an instance profile): credentials never travel with jobs.
        self.env.update(node_env or {})
        self.env.pop("RAY_AUTH_TOKEN_PATH", None)
        # The nodes' environment is this interpreter's (as a cluster node's activated virtualenv):
        # job entrypoints run `python -m pipeline.cli ...` from PATH.
        self.env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), self.env.get("PATH", "")])
        self.env.pop("RAY_ADDRESS", None)

    def _start(self, name: str, cpus: int, args: list[str]) -> RayNode:
        temp = self.root / name
        temp.mkdir()
        log = self.root / f"{name}.log"
        cmd = [RAY, "start", "--block", "--node-ip-address=127.0.0.1", f"--num-cpus={cpus}",
               "--object-store-memory=100000000", f"--temp-dir={temp}",
               f"--node-manager-port={free_port()}", f"--object-manager-port={free_port()}",
               f"--dashboard-agent-listen-port={free_port()}", f"--dashboard-agent-grpc-port={free_port()}",
               f"--runtime-env-agent-port={free_port()}", f"--metrics-export-port={free_port()}", *args]
        with open(log, "wb") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=self.env,
                                    start_new_session=True)
        node = RayNode(name, proc, log)
        self.nodes.append(node)
        return node

    def start_head(self) -> RayNode:
        node = self._start("head", self.head_cpus, ["--head", f"--port={self.gcs_port}", "--include-dashboard=true",
                                    "--dashboard-host=127.0.0.1",
                                    f"--dashboard-port={self.dashboard_url.rsplit(':', 1)[1]}",
                                    f"--ray-client-server-port={free_port()}", "--disable-usage-stats"])
        self._wait(lambda: len(self.alive_nodes()) >= 1, node, "head node / Jobs API")
        return node

    def add_worker(self, name: str) -> RayNode:
        before = len(self.alive_nodes())
        node = self._start(name, self.worker_cpus, [f"--address=127.0.0.1:{self.gcs_port}"])
        self._wait(lambda: len(self.alive_nodes()) > before, node, f"worker node {name}")
        return node

    def alive_nodes(self) -> list[dict]:
        """The ALIVE nodes per the dashboard's state API ([] while it is not answering)."""
        req = urllib.request.Request(
            f"{self.dashboard_url}/api/v0/nodes?limit=100&detail=false",
            headers={"Authorization": f"Bearer {self.token}"})
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                body = json.load(resp)
        except (OSError, ValueError):
            return []
        return [n for n in body["data"]["result"]["result"] if n["state"] == "ALIVE"]


    def _wait(self, ready, node: RayNode, what: str, timeout_s: float = 90) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if node.process.poll() is not None:
                raise RuntimeError(f"{what} exited early:\n{node.log_tail()}")
            if ready():
                return
            time.sleep(0.5)
        raise RuntimeError(f"{what} not ready after {timeout_s:.0f} s:\n{node.log_tail()}")

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.kill()


@pytest.fixture(scope="module")
def ray_cluster(s3_endpoint):
    """A started head (2 CPUs) + one worker ('worker1', 1 CPU); everything is killed after the module.

    The head keeps enough CPUs for a job to finish on it alone: a network actor (1 CPU) plus
    decode/write tasks (1 CPU each) -- so losing the worker costs time, not the job. The nodes
    hold the S3 endpoint's credentials in their environment, as a cluster config sets them.
    """
    root = Path(tempfile.mkdtemp(prefix="ppc-", dir="/tmp"))  # short: Unix socket paths live here
    # The moto endpoint is plain http: delta-rs (the output tables) refuses http unless told, and the
    # job's sink derives AWS_ALLOW_HTTP only from storage_options.endpoint_url, not from the environment.
    cluster = LocalRayCluster(root, node_env={**s3_endpoint.env, "AWS_ALLOW_HTTP": "true"})
    try:
        cluster.start_head()
        cluster.add_worker("worker1")
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def free_address() -> str:
    """An http:// address on 127.0.0.1 where nothing listens (for unreachable-cluster errors)."""
    return f"http://127.0.0.1:{free_port()}"


@dataclass
class S3Endpoint:
    """A moto S3 server on 127.0.0.1 with test credentials; ``env`` is what s3fs/boto clients need."""

    url: str
    env: dict

    def filesystem(self):
        import s3fs

        return s3fs.S3FileSystem(key=self.env["AWS_ACCESS_KEY_ID"], secret=self.env["AWS_SECRET_ACCESS_KEY"],
                                 endpoint_url=self.url)


@pytest.fixture(scope="module")
def s3_endpoint():
    """A real S3 API (moto server, its own thread) for the module; stopped afterwards."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    try:
        yield S3Endpoint(url, {"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "posepipe-test",
                               "AWS_SECRET_ACCESS_KEY": "posepipe-test-secret", "AWS_DEFAULT_REGION": "us-east-1"})
    finally:
        server.stop()
