"""Fixtures for the network tests."""
from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="module")
def one_torch_thread():
    """Run small CPU convolutions single-threaded for the module: on a shared 2-core machine OpenMP
    threads waiting on each other made them ~8x slower than one thread (measured)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
