"""Shared helpers for the benchmark tests."""
import argparse

import pytest


@pytest.fixture
def bench_args():
    """bench_args(module, **overrides): the module's parsed default arguments with some fields replaced."""
    def make(module, **over):
        p = argparse.ArgumentParser()
        module.add_arguments(p)
        a = p.parse_args([])
        for k, v in over.items():
            setattr(a, k, v)
        return a
    return make
