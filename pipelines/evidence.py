"""Stage `evidence`: the kNN graph and the out-of-fold probe, computed once (curator.evidence).

Writes RUN/knn.npz, RUN/oof_probs.npy, RUN/folds.npy and RUN/probe.json; adds the kNN backend to RUN/provenance.json.
With ``--pred-probs FILE`` the user's out-of-sample probabilities replace the probe (RUN/oof_probs.npy holds them,
RUN/folds.npy -1), and without embeddings there is no kNN graph (no RUN/knn.npz).
Skipped when the embeddings, the training labels, the ``[evidence]`` settings, the probabilities file and the seed
are unchanged. Every later stage (signals, audit, explorer) reads the stored evidence through `load_evidence`.
"""
from __future__ import annotations

import numpy as np

from curator import runfiles
from curator.data.cache import ids_digest
from curator.data.manifest import Dataset, manifest_fingerprint
from curator.data.options import DatasetOptions
from curator.evidence import Evidence, compute_evidence, evidence_from_pred_probs, load_evidence, write_evidence
from curator.evidence.config import EvidenceConfig
from curator.rundir import RunDir, file_fingerprint
from pipelines.prepare import train_rows

OUTPUTS = [runfiles.KNN, runfiles.OOF_PROBS, runfiles.FOLDS, runfiles.PROBE]
FORMAT = 3   # 2: knn.npz carries the ids digest of its samples; 3: probe.json, the chosen weight decay (runs written
             # before recompute the stage once)


def outputs(has_embeddings: bool) -> list[str]:
    """The evidence files a run has: no kNN graph without embeddings."""
    return OUTPUTS if has_embeddings else [runfiles.OOF_PROBS, runfiles.FOLDS, runfiles.PROBE]


def evidence_stage(run: RunDir, ds: Dataset, embeddings: np.ndarray | None, cfg: EvidenceConfig, *, seed: int,
                   device: str | None = None, options: DatasetOptions | None = None) -> Evidence:
    """Compute (or reload) the run's evidence for the training rows of `ds` (`options.pred_probs`: the user's
    probabilities instead of the probe; `embeddings` None only then)."""
    train = ds.manifest.iloc[train_rows(ds)]
    labels = train["label"].to_numpy(np.int64)
    pred = options.pred_probs if options is not None else None
    if embeddings is None and not pred:
        raise ValueError("the evidence stage needs embeddings unless --pred-probs gives probabilities")
    ids = ids_digest(train["sample_id"].astype(str).tolist())

    def work() -> None:
        if pred:
            from curator.evidence.pred_probs import read_pred_probs

            probs = read_pred_probs(pred, train["sample_id"].astype(str).to_numpy(), ds.class_names,
                                    kind=options.pred_probs_kind)
            ev = evidence_from_pred_probs(probs, labels, ds.n_classes, embeddings, cfg, seed=seed, device=device)
        else:
            ev = compute_evidence(embeddings, labels, ds.n_classes, cfg, seed=seed, device=device)
        write_evidence(run, ev, ids=ids)
        prov = run.provenance()
        prov["knn"] = ev.graph.info if ev.graph is not None else None
        if pred:
            prov["pred_probs"] = {"file": str(pred), "kind": options.pred_probs_kind, "sha256": file_fingerprint(pred)}
        run.write_json(runfiles.PROVENANCE, prov)

    inputs = {"evidence": cfg.to_dict(), "seed": seed, "n_classes": ds.n_classes, "manifest": manifest_fingerprint(train),
              "format": FORMAT}
    if pred:
        inputs["pred_probs"] = {"sha256": file_fingerprint(pred), "kind": options.pred_probs_kind}
    run.run_stage("evidence", work, outputs=outputs(embeddings is not None), inputs=inputs,
                  input_files=[runfiles.EMBEDDINGS] if embeddings is not None else [])
    return load_evidence(run, embeddings, labels, ds.n_classes, cfg, seed=seed, device=device,
                         source="pred_probs" if pred else "probe", ids=ids)
