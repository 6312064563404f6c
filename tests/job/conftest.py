"""Job-test fixtures: the session's local Ray and a moto S3 server (the stand-in network is pipeline.testing)."""
from __future__ import annotations

import json
import socket
from dataclasses import dataclass

import pytest


@pytest.fixture(scope="session")
def job_ray(ray_local):
    """The session's local Ray (workers import the stand-in network from pipeline.testing)."""
    return ray_local


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
        iam.create_user(UserName="posepipe")
        iam.put_user_policy(UserName="posepipe", PolicyName="s3", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
        key = iam.create_access_key(UserName="posepipe")["AccessKey"]
        requests.post(f"{url}/moto-api/reset-auth", data=b"0", timeout=10)  # from now on credentials count
        yield S3(url, {"key": key["AccessKeyId"], "secret": key["SecretAccessKey"], "endpoint_url": url})
        # moto keeps this setting process-wide: turn auth off again for other tests' servers.
        requests.post(f"{url}/moto-api/reset-auth", data=b"inf", timeout=10)
    finally:
        server.stop()
