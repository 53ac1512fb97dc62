"""What a signal is: a group of per-sample columns of RUN/signals.parquet, computed from declared inputs.

A `Signal` says which of the run's inputs it reads — ``evidence`` (the kNN graph and the out-of-fold probe),
``heads`` (the robust heads' results), ``hygiene`` (RUN/hygiene.parquet) — and which columns it writes (each
declared in the column contract, `curator.columns`; ``()`` for the groups whose columns their own registries
derive: the heads' and the hygiene checks'). Signals explain a sample; none of them enters the label-issue
score, which comes from the evidence alone (`curator.audit.aggregate`, docs/audit.md). The registry is
`curator.signals.registry`; how to add a signal is in ARCHITECTURE.md.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal, Mapping

import numpy as np
import pandas as pd

from curator.evidence import KnnGraph
from curator.heads.base import HeadResult
from curator.signals.config import SignalsConfig

Input = Literal["evidence", "heads", "hygiene"]


@dataclass
class SignalInputs:
    """The run's inputs for the training rows in manifest order (= evidence order)."""

    sample_ids: np.ndarray
    labels: np.ndarray
    n_classes: int
    cfg: SignalsConfig
    graph: KnnGraph | None = None                 # evidence
    oof_probs: np.ndarray | None = None           # evidence
    head_results: Mapping[str, HeadResult] = field(default_factory=dict)   # heads
    hygiene: pd.DataFrame | None = None           # hygiene

    def has(self, what: Input) -> bool:
        return {"evidence": self.graph is not None and self.oof_probs is not None,
                "heads": bool(self.head_results), "hygiene": self.hygiene is not None}[what]


@dataclass(frozen=True)
class Signal:
    name: str
    inputs: tuple[Input, ...]                               # what it reads; it runs only when all are there
    columns: tuple[str, ...]                                # what it writes (declared in curator.columns)
    compute: Callable[[SignalInputs], dict[str, np.ndarray]]
    version: int = 1                                        # bump when its values change: the stage re-runs
