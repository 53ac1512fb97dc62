"""The registry of signals: the column groups of RUN/signals.parquet, in table order (after ``sample_id``, ``label``,
``true_label``). Adding a signal = one module with a `Signal` and one line here (ARCHITECTURE.md)."""
from __future__ import annotations

from curator.signals import agreement, confident, heads, hygiene
from curator.signals.plugin import Signal

SIGNALS: list[Signal] = [
    heads.SIGNAL,
    agreement.SIGNAL,
    confident.SIGNAL,
    hygiene.SIGNAL,
]


def versions() -> dict[str, int]:
    """{signal: version}: part of the signals stage's fingerprint."""
    return {s.name: s.version for s in SIGNALS}
