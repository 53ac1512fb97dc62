"""The robust heads' per-sample columns as signals (``<head>_prob_label``, ``_pred``, ``_margin``, ``_loss`` and a
head's own, declared in `curator.columns` from the head table)."""
from __future__ import annotations

from typing import Mapping

import numpy as np

from curator.heads import registry  # noqa: F401 - importing the head table declares the heads' columns
from curator.heads.base import HeadResult
from curator.signals.plugin import Signal

ID_COLUMNS = ["sample_id", "label", "true_label"]


def head_columns(head_results: Mapping[str, HeadResult], labels: np.ndarray) -> dict[str, np.ndarray]:
    """All heads' per-sample columns, checked for length and name clashes; in a fixed order (heads by name, then
    each head's columns by name), so a table built from heads reloaded from disk equals one from fresh heads."""
    labels = np.asarray(labels, dtype=np.int64)
    n = len(labels)
    cols: dict[str, np.ndarray] = {}
    for _, hr in sorted(head_results.items()):
        own = dict(hr.signals)
        if hr.probs is not None and len(hr.probs):
            probs = np.asarray(hr.probs)
            if probs.shape[0] != n:
                raise ValueError(f"head {hr.name!r}: probs has {probs.shape[0]} rows for {n} training samples")
            ok = (labels >= 0) & (labels < probs.shape[1])
            pl = np.full(n, np.nan, np.float32)
            pl[ok] = probs[np.flatnonzero(ok), labels[ok]]
            own.setdefault(f"{hr.name}_prob_label", pl)
            own.setdefault(f"{hr.name}_pred", probs.argmax(axis=1).astype(np.int64))
        for name, values in sorted(own.items()):
            values = np.asarray(values)
            if values.shape != (n,):
                raise ValueError(f"head {hr.name!r}: signal {name!r} has shape {values.shape}, expected ({n},)")
            if name in cols or name in ID_COLUMNS:
                raise ValueError(f"head {hr.name!r}: signal column {name!r} is produced twice")
            cols[name] = values
    return cols


SIGNAL = Signal("heads", ("heads",), (), lambda i: head_columns(i.head_results, i.labels))
