"""Device selection: CUDA when present, otherwise the CPU. One place decides."""
from __future__ import annotations

import os
from contextlib import contextmanager

import torch

from curator.config import ConfigError


class DeviceError(ConfigError, RuntimeError):
    """A requested device that this machine does not have (or no device at all): one line for the user."""


def select_device(prefer: str | None = None) -> torch.device:
    """Return the device to compute on.

    `prefer` (or the environment variable CURATOR_DEVICE) may force "cpu" or "cuda[:i]";
    otherwise CUDA is used when available.
    """
    choice = prefer or os.environ.get("CURATOR_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(choice)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise DeviceError(f"device {choice!r} is not one curator runs on; use cpu, cuda or cuda:i")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {choice!r} requested but CUDA is not available on this machine (use --device cpu)")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise DeviceError(f"device {choice!r} requested but this machine has {torch.cuda.device_count()} CUDA device(s)")
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


#: below this many input values (rows × dims) a CPU model trains on one thread: for small matrices thread
#: start-up and spinning cost more than they save, and on a busy machine spinning threads can slow a tiny fit
#: down by orders of magnitude (docs/heads.md, "Cost")
SMALL_PROBLEM = 20_000_000


def compute_threads(device: torch.device, n_values: int) -> int:
    """Intra-op threads for a model on `device` whose input has `n_values` values: 1 for a small CPU problem,
    torch's default otherwise."""
    return 1 if device.type == "cpu" and n_values < SMALL_PROBLEM else torch.get_num_threads()
