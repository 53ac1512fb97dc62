"""`Evidence`: the kNN graph and the out-of-fold probe probabilities of one run, with what re-fits need.

With the user's own out-of-sample probabilities (`--pred-probs`, `curator.evidence.pred_probs`) they take the
probe's place (`evidence_from_pred_probs`, ``source="pred_probs"``): they are stored as RUN/oof_probs.npy, are
never re-fitted (the audit's self-training rounds re-weight only the kNN vote), RUN/folds.npy holds -1 (curator
made no folds), and without embeddings there is no kNN graph (no RUN/knn.npz; ``graph`` and ``features`` None).

`compute_evidence` computes both from the embeddings and the given labels (the probe's weight decay chosen first,
`curator.evidence.probe.select_weight_decay`); `write_evidence` stores them as RUN/knn.npz, RUN/oof_probs.npy,
RUN/folds.npy and RUN/probe.json (the chosen weight decay, which the audit's re-fits use); `load_evidence` is their
one reader. `curator audit`
writes them in its evidence stage and every later stage loads them; `curator bench detect-cifar10n` calls
`compute_evidence` and the same audit functions directly.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from curator import runfiles
from curator.evidence.config import EvidenceConfig
from curator.evidence.crossfit import fold_assignment
from curator.evidence.graph import KnnGraph, knn_graph, read_knn_graph, write_knn_graph
from curator.evidence.probe import ProbeSettings, oof_probs, select_weight_decay, standardise

LOG = logging.getLogger(__name__)


@dataclass
class Evidence:
    features: np.ndarray | None  # (N, d) float32 standardised embeddings, the one normalisation (None: no embeddings)
    labels: np.ndarray          # (N,) int64 given labels the probe learned
    n_classes: int
    graph: KnnGraph | None      # self-excluded kNN graph on `features` (None: no embeddings)
    folds: np.ndarray           # (N,) int16 fold of each sample (-1: the user's probabilities, no folds)
    oof_probs: np.ndarray       # (N, C) float32 out-of-fold probe probabilities, every sample weighted 1
    probe: ProbeSettings = field(default_factory=ProbeSettings)
    seed: int = 0
    device: str | None = None
    source: str = "probe"       # "probe" (curator's cross-fitted probe) | "pred_probs" (the user's, --pred-probs)
    weight_decay_nll: dict = field(default_factory=dict)  # {candidate weight decay: held-out NLL} of the choice
    _fitted: dict = field(default_factory=dict, repr=False)  # the last re-fit's fold models (`refit`)

    def refit(self, weights: np.ndarray, round_: int) -> np.ndarray:
        """Out-of-fold probabilities (N, C) of the probe re-fitted with sample `weights` (N,), on the same folds;
        the user's probabilities as they are (curator cannot re-fit the user's model).

        Round 1 fits every fold from scratch (``probe.steps``); round r > 1 starts each fold from its round r − 1
        fit (``probe.refit_steps``): between rounds only the sample weights move a little, and a warm start reaches
        the same detection in a third of the steps (docs/signals.md, "The audit's re-fits")."""
        if self.source == "pred_probs":
            return self.oof_probs
        init = self._fitted if round_ > 1 and self._fitted else None   # a later round without an earlier one: cold
        fitted: dict = {}
        out = oof_probs(self.features, self.labels, self.n_classes, self.folds, self.probe, weights=weights,
                        seed=self.seed + 97 * round_, device=self.device, init=init, fitted=fitted)
        self._fitted = fitted
        return out


def probe_settings(cfg: EvidenceConfig, weight_decay: float | None = None) -> ProbeSettings:
    """The probe's settings from `cfg`, with `weight_decay` (default: the first candidate)."""
    return ProbeSettings(steps=cfg.probe_steps, batch_size=cfg.probe_batch_size, lr=cfg.probe_lr,
                         weight_decay=cfg.weight_decays()[0] if weight_decay is None else float(weight_decay),
                         refit_steps=cfg.probe_refit_steps)


def _check_labels(labels: np.ndarray, n_classes: int, n: int) -> np.ndarray:
    y = np.asarray(labels, dtype=np.int64)
    if len(y) != n:
        raise ValueError(f"embeddings have {n} rows but there are {len(y)} labels")
    if n and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"labels must lie in 0..{n_classes - 1}; found {int(y.min())}..{int(y.max())}")
    return y


def compute_graph(features: np.ndarray, cfg: EvidenceConfig, *, seed: int = 0, device=None) -> KnnGraph:
    """The kNN graph of standardised `features` (label-free: reusable across label sets)."""
    return knn_graph(features, cfg.k, exact_max_n=cfg.knn_exact_max_n, target_recall=cfg.knn_target_recall,
                     seed=seed, device=device)


def compute_evidence(embeddings: np.ndarray, labels: np.ndarray, n_classes: int, cfg: EvidenceConfig | None = None, *,
                     seed: int = 0, device: str | None = None, graph: KnnGraph | None = None) -> Evidence:
    """Everything of `Evidence` from raw embeddings (N, d) and given labels (N,); `graph` may be passed
    when already built on the same embeddings (it does not depend on the labels)."""
    cfg = cfg or EvidenceConfig()
    X = standardise(embeddings)
    y = _check_labels(labels, n_classes, len(X))
    t0 = time.perf_counter()
    graph = graph if graph is not None else compute_graph(X, cfg, seed=seed, device=device)
    t1 = time.perf_counter()
    folds = fold_assignment(y, cfg.folds, seed)
    wd, nll = select_weight_decay(X, y, n_classes, folds, probe_settings(cfg), cfg.weight_decays(), seed=seed,
                                  device=device)
    if nll:
        LOG.info("evidence: probe weight decay %g (held-out class-balanced NLL %s)", wd,
                 ", ".join(f"{c:g}: {v:.3f}" for c, v in nll.items()))
    settings = probe_settings(cfg, wd)
    probs = oof_probs(X, y, n_classes, folds, settings, seed=seed, device=device)
    LOG.info("evidence: kNN graph (k=%d, %s) in %.1f s, %d-fold out-of-fold probe in %.1f s", graph.k,
             graph.info.get("backend", "given"), t1 - t0, int(folds.max()) + 1, time.perf_counter() - t1)
    return Evidence(X, y, n_classes, graph, folds, probs, settings, seed, device, weight_decay_nll=nll)


def evidence_from_pred_probs(probs: np.ndarray, labels: np.ndarray, n_classes: int, embeddings: np.ndarray | None,
                             cfg: EvidenceConfig | None = None, *, seed: int = 0, device: str | None = None,
                             graph: KnnGraph | None = None) -> Evidence:
    """`Evidence` from the user's out-of-sample probabilities (N, C) (already checked by
    `curator.evidence.pred_probs.read_pred_probs`), plus the kNN graph when there are `embeddings`."""
    cfg = cfg or EvidenceConfig()
    P = np.asarray(probs, np.float32)
    y = _check_labels(labels, n_classes, len(P))
    if P.shape != (len(y), n_classes):
        raise ValueError(f"probabilities of shape {P.shape} for {len(y)} samples and {n_classes} classes")
    X = None
    if embeddings is not None:
        X = standardise(embeddings)
        if len(X) != len(y):
            raise ValueError(f"embeddings have {len(X)} rows but there are {len(y)} labels")
        graph = graph if graph is not None else compute_graph(X, cfg, seed=seed, device=device)
    LOG.info("evidence: the user's predicted probabilities%s", f" and the kNN graph (k={graph.k})" if graph is not None
             else " only (no embeddings: no kNN graph)")
    return Evidence(X, y, n_classes, graph, np.full(len(y), -1, np.int16), P, probe_settings(cfg), seed, device,
                    source="pred_probs")


def write_evidence(run, ev: Evidence, *, ids: str = "") -> None:
    """RUN/knn.npz (when there is a graph; with `ids`, the digest of the training sample ids it was computed for),
    RUN/oof_probs.npy, RUN/folds.npy, RUN/probe.json (the probe's weight decay; null for --pred-probs)."""
    if ev.graph is not None:
        write_knn_graph(Path(run / runfiles.KNN), ev.graph, ids=ids)
    run.write_npy(runfiles.OOF_PROBS, ev.oof_probs.astype(np.float32))
    run.write_npy(runfiles.FOLDS, ev.folds.astype(np.int16))
    probe = ev.source != "pred_probs"
    run.write_json(runfiles.PROBE, {
        "weight_decay": ev.probe.weight_decay if probe else None,
        "held_out_nll": [{"weight_decay": c, "nll": v} for c, v in ev.weight_decay_nll.items()] if probe else []})


def _read_weight_decay(run) -> float | None:
    """The probe's weight decay from RUN/probe.json (None: --pred-probs). A run whose evidence stage predates the
    file re-runs that stage (`pipelines.evidence.FORMAT`), so a missing or malformed file is a damaged run."""
    doc = run.read_json(runfiles.PROBE)
    wd = doc.get("weight_decay", "missing") if isinstance(doc, dict) else "missing"
    if wd is not None and (isinstance(wd, bool) or not isinstance(wd, (int, float)) or not np.isfinite(wd) or wd < 0):
        raise ValueError(f"{run / runfiles.PROBE}: no valid probe weight decay (got {wd!r}); re-run the evidence stage")
    return None if wd is None else float(wd)


def load_evidence(run, embeddings: np.ndarray | None, labels: np.ndarray, n_classes: int, cfg: EvidenceConfig, *,
                  seed: int = 0, device: str | None = None, source: str = "probe", ids: str | None = None) -> Evidence:
    """The run's evidence: the stored graph (checked against `ids`), folds and probabilities plus the standardised
    `embeddings` (None with ``source="pred_probs"`` and no embeddings: no graph)."""
    X = standardise(embeddings) if embeddings is not None else None
    y = _check_labels(labels, n_classes, len(labels) if X is None else len(X))
    graph = read_knn_graph(run / runfiles.KNN, ids=ids) if X is not None else None
    folds = run.read_npy(runfiles.FOLDS)
    probs = run.read_npy(runfiles.OOF_PROBS)
    if (graph is not None and graph.indices.shape[0] != len(y)) or len(folds) != len(y) \
            or probs.shape != (len(y), n_classes):
        raise ValueError(f"the run's evidence does not match its {len(y)} training samples and {n_classes} classes "
                         "(re-run the evidence stage)")
    wd = _read_weight_decay(run) if source == "probe" else None
    return Evidence(X, y, n_classes, graph, folds, probs, probe_settings(cfg, wd), seed, device, source=source)

