"""Shared fixtures for the head tests."""
import pytest

from curator.device import torch_threads


@pytest.fixture(autouse=True)
def one_thread():
    # tiny models: one thread avoids oversubscription on shared 2-core machines
    with torch_threads(1):
        yield
