"""Fixtures shared by every test area: where ../shared is, and a local Ray runtime."""
from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("POSEPIPE_SHARED_DIR", REPO.parent / "shared")).resolve()
MODEL_DIR = Path(os.environ.get("POSEPIPE_MODEL_DIR", SHARED / "models")).resolve()

# Tests always read weights from ../shared/models; nothing is downloaded.
os.environ.setdefault("POSEPIPE_MODEL_DIR", str(MODEL_DIR))
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"shared data not found at {SHARED}; set POSEPIPE_SHARED_DIR")
    return SHARED


@pytest.fixture(scope="session")
def model_dir(shared_dir: Path) -> Path:
    return MODEL_DIR


@pytest.fixture(scope="session")
def media_dir(shared_dir: Path) -> Path:
    return shared_dir / "media"


@pytest.fixture(scope="session")
def ray_local():
    """One in-process local Ray runtime for the whole session (2 CPUs, no dashboard)."""
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
    yield ray
    ray.shutdown()


@dataclass
class S3:
    """A moto S3 server on 127.0.0.1 that checks credentials. ``options``: valid s3fs storage options."""

    url: str
    options: dict

    def fs(self, **overrides):
        import s3fs

        return s3fs.S3FileSystem(**{**self.options, **overrides})


@pytest.fixture(scope="module")
def s3():
    """A real S3 API (moto server thread) with an IAM user allowed s3:*; auth is enforced."""
    import boto3
    import requests
    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    try:
        iam = boto3.client("iam", endpoint_url=url, region_name="us-east-1",
                           aws_access_key_id="setup", aws_secret_access_key="setup")
        user = f"posepipe-{port}"  # moto's IAM state is per process: one user per server
        iam.create_user(UserName=user)
        iam.put_user_policy(UserName=user, PolicyName="s3", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
        key = iam.create_access_key(UserName=user)["AccessKey"]
        requests.post(f"{url}/moto-api/reset-auth", data=b"0", timeout=10)  # from now on credentials count
        yield S3(url, {"key": key["AccessKeyId"], "secret": key["SecretAccessKey"], "endpoint_url": url})
        # moto keeps this setting process-wide: turn auth off again for other tests' servers.
        requests.post(f"{url}/moto-api/reset-auth", data=b"inf", timeout=10)
    finally:
        server.stop()
