"""Fixtures shared by every test area: where ../shared is, and a local Ray runtime."""
from __future__ import annotations

import os
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
