"""`AdapterSpec`: what a dataset adapter declares — its name, its loader, what it reads and what its root holds.

Every adapter module ends with ``ADAPTER_SPECS``; `curator.data.registry` lists the modules (ARCHITECTURE.md,
"Add a dataset").
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from curator.data.manifest import Dataset
from curator.data.options import DatasetOptions
from curator.data.problems import ProblemReport

Loader = Callable[[DatasetOptions, ProblemReport], Dataset]


@dataclass(frozen=True)
class AdapterSpec:
    name: str
    loader: Loader        # (options, report) -> Dataset
    summary: str          # one line: what it reads
    root_layout: str      # what the root must contain
    needs_root: bool = True
