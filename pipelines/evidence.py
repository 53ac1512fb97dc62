"""Stage `evidence`: the kNN graph and the out-of-fold probe, computed once (curator.evidence).

Writes RUN/knn.npz, RUN/oof_probs.npy and RUN/folds.npy; adds the kNN backend to RUN/provenance.json.
Skipped when the embeddings, the training labels, the ``[evidence]`` settings and the seed are unchanged.
Every later stage (signals, audit, explorer) reads the stored evidence through `load_evidence`.
"""
from __future__ import annotations

import numpy as np

from curator import runfiles
from curator.data.cache import ids_digest
from curator.data.manifest import Dataset, manifest_fingerprint
from curator.evidence import Evidence, compute_evidence, load_evidence, write_evidence
from curator.evidence.config import EvidenceConfig
from curator.rundir import RunDir
from pipelines.prepare import train_rows

OUTPUTS = [runfiles.KNN, runfiles.OOF_PROBS, runfiles.FOLDS]
FORMAT = 2   # 2: knn.npz carries the ids digest of its samples (runs written before recompute the stage once)


def evidence_stage(run: RunDir, ds: Dataset, embeddings: np.ndarray, cfg: EvidenceConfig, *, seed: int,
                   device: str | None = None) -> Evidence:
    """Compute (or reload) the run's evidence for the training rows of `ds`."""
    train = ds.manifest.iloc[train_rows(ds)]
    labels = train["label"].to_numpy(np.int64)
    ids = ids_digest(train["sample_id"].astype(str).tolist())

    def work() -> None:
        ev = compute_evidence(embeddings, labels, ds.n_classes, cfg, seed=seed, device=device)
        write_evidence(run, ev, ids=ids)
        prov = run.provenance()
        prov["knn"] = ev.graph.info
        run.write_json(runfiles.PROVENANCE, prov)

    run.run_stage("evidence", work, outputs=OUTPUTS, input_files=[runfiles.EMBEDDINGS],
                  inputs={"evidence": cfg.to_dict(), "seed": seed, "n_classes": ds.n_classes,
                          "manifest": manifest_fingerprint(train), "format": FORMAT})
    return load_evidence(run, embeddings, labels, ds.n_classes, cfg, seed=seed, device=device, ids=ids)
