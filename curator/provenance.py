"""Provenance of a run: package versions, memory peaks and per-stage timings (RUN/provenance.json)."""
from __future__ import annotations

import logging
import platform
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

LOG = logging.getLogger(__name__)


def package_versions() -> dict[str, str]:
    names = ["curator", "torch", "torchvision", "numpy", "pandas", "pyarrow", "scikit-learn", "scipy",
             "faiss-cpu", "faiss-gpu-cu12", "umap-learn", "streamlit", "cleanlab"]
    out = {}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            pass
    return out


def reset_peak_memory() -> None:
    """Reset this process's resident-memory high-water mark (Linux: /proc/self/clear_refs), so the next
    `peak_memory_mb` is the peak of what runs in between; a no-op where the kernel does not offer it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_memory_mb() -> float | None:
    """Peak resident memory (MiB) of this process since start or the last `reset_peak_memory` (VmHWM), or None."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def environment(seed: int | None, data_fingerprint: str) -> dict[str, Any]:
    """What provenance.json records about the machine and the data when a run is prepared."""
    return {"versions": package_versions(), "python": sys.version.split()[0], "platform": platform.platform(),
            "seed": seed, "data_fingerprint": data_fingerprint, "written": time.strftime("%Y-%m-%dT%H:%M:%S")}


def with_timing(prov: dict[str, Any], stage: str, seconds: float, peak_memory_mb: float | None) -> dict[str, Any]:
    prov.setdefault("timings_s", {})[stage] = round(seconds, 3)
    if peak_memory_mb is not None:
        prov.setdefault("peak_memory_mb", {})[stage] = peak_memory_mb
    return prov


def check_provenance(prov: Any, path: Path) -> dict[str, Any]:
    """`prov` if it is a provenance record (timings and peaks: tables of non-negative numbers), else an empty one
    (with a warning): provenance is bookkeeping, a broken one never stops a run."""
    def table_ok(v: Any) -> bool:
        return isinstance(v, dict) and all(isinstance(x, (int, float)) and not isinstance(x, bool) and 0 <= x < 1e12
                                           for x in v.values())
    if isinstance(prov, dict) and all(table_ok(prov.get(k, {})) for k in ("timings_s", "peak_memory_mb")):
        return prov
    if prov:
        LOG.warning("%s is not a valid provenance record; starting it afresh", path)
    return {}
