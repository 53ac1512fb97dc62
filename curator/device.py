"""Device selection: CUDA when present, otherwise the CPU. One place decides."""
from __future__ import annotations

import os
from contextlib import contextmanager

import torch


def select_device(prefer: str | None = None) -> torch.device:
    """Return the device to compute on.

    `prefer` (or the environment variable CURATOR_DEVICE) may force "cpu" or "cuda[:i]";
    otherwise CUDA is used when available.
    """
    choice = prefer or os.environ.get("CURATOR_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(choice)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {choice!r} requested but CUDA is not available")
    return device


@contextmanager
def torch_threads(n: int):
    """Run the block with torch using `n` intra-op threads (at least 1); the previous count is restored after."""
    old = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n)))
    try:
        yield
    finally:
        torch.set_num_threads(old)
