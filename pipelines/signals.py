"""The signals stage: embeddings + head results -> RUN/signals.parquet and RUN/knn.npz.

Also writes RUN/heads/cv_logreg.npz (``probs``: the out-of-fold logistic-regression
probabilities the confident-learning columns come from, N_train x C float32) so a cleanlab
comparison can reuse exactly the same inputs. Skipped when its inputs (config, training manifest,
embeddings, head outputs) are unchanged; the stored table is then reloaded.
"""
from __future__ import annotations

import hashlib
import logging
from typing import Mapping

import numpy as np
import pandas as pd

from curator.data.manifest import Dataset, manifest_fingerprint
from curator.heads.base import HeadResult
from curator.rundir import RunDir, atomic_path
from curator.signals.config import SignalsConfig
from curator.signals.table import build_signals_table, compute_cv_probs, compute_knn
from pipelines.prepare import train_rows

LOG = logging.getLogger(__name__)

STAGE = "signals"
STAGE_VERSION = 1   # bump when the table's definition changes, to invalidate old runs


def _array_fingerprint(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def _heads_fingerprint(head_results: Mapping[str, HeadResult]) -> dict[str, str]:
    out = {}
    for name, hr in sorted(head_results.items()):
        arrays = [np.asarray(hr.probs)] + [np.asarray(hr.signals[k]) for k in sorted(hr.signals)]
        out[name] = _array_fingerprint(*arrays) + ":" + ",".join(sorted(hr.signals))
    return out


def write_npz_atomic(run: RunDir, name: str, **arrays: np.ndarray) -> None:
    with atomic_path(run / name) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


def signals_stage(run: RunDir, ds: Dataset, embeddings: np.ndarray,
                  head_results: Mapping[str, HeadResult] | list[HeadResult] | None,
                  cfg: SignalsConfig | None = None) -> pd.DataFrame:
    """Build (or reload) RUN/signals.parquet for the training rows of `ds`; also RUN/knn.npz
    (`indices` (N, k) int64, `similarities` (N, k) float32) and RUN/heads/cv_logreg.npz."""
    cfg = cfg or SignalsConfig()
    if isinstance(head_results, list):
        head_results = {h.name: h for h in head_results}
    head_results = dict(head_results or {})
    train = ds.manifest.iloc[train_rows(ds)].reset_index(drop=True)
    if len(train) != len(embeddings):
        raise ValueError(f"{len(embeddings)} embedding rows for {len(train)} training samples")
    outputs = ["signals.parquet", "knn.npz"] + (["heads/cv_logreg.npz"] if cfg.confident_learning else [])
    inputs = {"version": STAGE_VERSION, "config": cfg.to_dict(), "manifest": manifest_fingerprint(train),
              "n_classes": ds.n_classes, "embeddings": _array_fingerprint(np.asarray(embeddings)),
              "heads": _heads_fingerprint(head_results)}

    def work() -> None:
        knn = compute_knn(embeddings, cfg)
        write_npz_atomic(run, "knn.npz", indices=knn.indices, similarities=knn.similarities)
        cv_probs = None
        if cfg.confident_learning:
            cv_probs = compute_cv_probs(embeddings, train["label"].to_numpy(), ds.n_classes, cfg)
            write_npz_atomic(run, "heads/cv_logreg.npz", probs=cv_probs)
        table = build_signals_table(train, embeddings, head_results, cfg, n_classes=ds.n_classes, knn=knn,
                                    cv_probs=cv_probs)
        run.write_parquet("signals.parquet", table)
        prov = run.read_json("provenance.json", {}) or {}
        prov["knn"] = knn.info
        run.write_json("provenance.json", prov)

    run.run_stage(STAGE, work, inputs=inputs, outputs=outputs)
    return run.read_parquet("signals.parquet")


def load_knn(run: RunDir) -> tuple[np.ndarray, np.ndarray]:
    """(similarities (N, k) float32, indices (N, k) int64) from RUN/knn.npz."""
    with np.load(run / "knn.npz", allow_pickle=False) as z:
        return z["similarities"], z["indices"]
