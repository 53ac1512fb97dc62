"""The registry of signals: the column groups of RUN/signals.parquet, in table order (after ``sample_id``, ``label``,
``true_label``). Adding a signal = one module with a `Signal` and one line here (ARCHITECTURE.md)."""
from __future__ import annotations

from curator import columns
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


if __name__ == "__main__":   # python -m curator.signals.registry docs/signals.md docs/audit.md: the column tables
    import sys
    from pathlib import Path

    for arg in sys.argv[1:]:   # every plug-in's columns are declared here (this module imports the heads and checks)
        path = Path(arg)
        path.write_text(columns.fill_docs(path.read_text(encoding="utf-8")), encoding="utf-8")
