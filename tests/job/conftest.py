"""Job-test fixtures: the session's local Ray (the stand-in network is pipeline.testing; the moto S3
server fixture ``s3`` is in tests/conftest.py)."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def job_ray(ray_local):
    """The session's local Ray (workers import the stand-in network from pipeline.testing)."""
    return ray_local
