"""The signals table: one row per training sample, one column per signal (docs/signals.md).

Columns, in order: ``sample_id``, ``label``, ``true_label`` (−1 unknown); then, for every signal of the registry
(`curator.signals.registry`) whose inputs the run has, its columns: every head's signal columns
(``<head>_prob_label`` and ``<head>_pred`` derived from the head's probabilities when the head does not supply
them), the neighbourhood columns from the run's kNN graph (`curator.signals.agreement`), the confident-learning
columns from its out-of-fold probe (`curator.signals.confident`) and, when the hygiene stage ran, its
measurements (`curator.signals.hygiene`). Every column must be declared in `curator.columns` (checked here), and a
signal writes exactly the columns it declares.
"""
from __future__ import annotations

import logging
from typing import Mapping

import numpy as np
import pandas as pd

from curator.columns import check_columns
from curator.evidence import KnnGraph
from curator.heads.base import HeadResult
from curator.signals import registry
from curator.signals.config import SignalsConfig
from curator.signals.heads import ID_COLUMNS
from curator.signals.plugin import SignalInputs

LOG = logging.getLogger(__name__)


def build_signals_table(train_manifest: pd.DataFrame, head_results: Mapping[str, HeadResult], graph: KnnGraph,
                        oof_probs: np.ndarray, n_classes: int, cfg: SignalsConfig | None = None,
                        hygiene: pd.DataFrame | None = None) -> pd.DataFrame:
    """The signals table for the training rows `train_manifest` (manifest order = evidence order)."""
    m = train_manifest.reset_index(drop=True)
    if len(m) != graph.indices.shape[0] or len(m) != len(oof_probs):
        raise ValueError(f"{len(m)} training samples but the evidence has {graph.indices.shape[0]} kNN rows and "
                         f"{len(oof_probs)} probability rows")
    labels = m["label"].to_numpy(dtype=np.int64)
    table = {"sample_id": m["sample_id"].astype(str).to_numpy(), "label": labels,
             "true_label": m["true_label"].to_numpy(dtype=np.int64)}
    inputs = SignalInputs(table["sample_id"], labels, n_classes, cfg or SignalsConfig(), graph=graph,
                          oof_probs=oof_probs, head_results=head_results, hygiene=hygiene)
    for signal in registry.SIGNALS:
        if not all(inputs.has(what) for what in signal.inputs):
            continue
        cols = signal.compute(inputs)
        if signal.columns and list(cols) != list(signal.columns):
            raise ValueError(f"signal {signal.name!r} wrote {list(cols)}, but declares {list(signal.columns)}")
        clash = [c for c in cols if c in table or c in ID_COLUMNS]
        if clash:
            raise ValueError(f"signal {signal.name!r}: column(s) {clash} are produced twice")
        table.update(cols)
    df = pd.DataFrame(table)
    check_columns(df.columns, "signals")
    LOG.info("signals table: %d samples x %d columns", len(df), df.shape[1])
    return df
