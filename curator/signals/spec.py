"""The signal contract (STYLE §1, §10): every per-sample signal column is declared once.

A `SignalSpec` names a column of ``signals.parquet``, says which way is "suspicious", its range,
and a one-line plain explanation that the explorer shows next to the value.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Direction = Literal["higher_is_clean", "higher_is_issue", "categorical", "info"]


@dataclass(frozen=True)
class SignalSpec:
    name: str            # column name in signals.parquet
    direction: Direction
    range: str           # e.g. "[0, 1]", "(0, e]", "class index"
    explanation: str     # one sentence for people
    source: str          # which method produced it (e.g. "LA+SuperLoss head", "kNN (FAISS)")


SIGNAL_SPECS: dict[str, SignalSpec] = {}


def declare(*specs: SignalSpec) -> None:
    for s in specs:
        SIGNAL_SPECS[s.name] = s
