"""The names of the files in a run directory — one constant per artefact (README "The run directory").

Every stage writes and every reader opens an artefact through these names; the module that owns an
artefact's format also owns its one reader (e.g. `curator.evidence.graph.read_knn_graph` for `KNN`).
"""
from __future__ import annotations

CONFIG = "config.json"                  # what was asked for: dataset options, the resolved recipe, class names
PROVENANCE = "provenance.json"          # versions, seed, data fingerprint, per-stage timings
MANIFEST = "manifest.parquet"           # one row per sample, all splits
PROBLEMS = "problems.parquet"           # bad inputs found while reading the data
IMAGE_CHECK = "image_check.parquet"     # what decoding every image found (cached per manifest)
IMAGE_PROPERTIES = "image_properties.parquet"  # per sample: content hash, size, darkness, sharpness, ... (curator.hygiene)
CHECKPOINTS = "checkpoints"             # SSL checkpoints: last.pt every epoch, then the files below
ENCODER = "checkpoints/backbone.pt"     # the trained encoder (curator.ssl.embed.load_backbone)
SSL_HISTORY = "checkpoints/history.json"  # per-epoch loss and kNN monitor, the plan, partial or complete
BUDGET = "checkpoints/budget.json"      # the time budget turned into epochs once (curator.ssl.budget)
IMAGE_CACHE = "image_cache.json"        # which decoded-image cache the run used (curator.data.cache)
LOCK = "run.lock"                       # held by the one process writing the run (curator.rundir)
EMBEDDINGS = "embeddings.npy"           # (N_train, d) float16, training rows in manifest order
EMBEDDINGS_TEST = "embeddings_test.npy"  # (N_test, d) float16
KNN = "knn.npz"                         # the kNN graph (curator.evidence.graph)
OOF_PROBS = "oof_probs.npy"             # (N_train, C) float32 out-of-fold probe probabilities, or the --pred-probs ones (curator.evidence)
PROBE = "probe.json"                    # the probe's chosen weight decay and each candidate's held-out NLL (curator.evidence)
FOLDS = "folds.npy"                     # (N_train,) int16 fold of each sample in the cross-fitting (-1: --pred-probs)
HYGIENE = "hygiene.parquet"             # per training sample: duplicate / leak / quality / outlier checks (curator.hygiene)
HYGIENE_SUMMARY = "hygiene.json"        # thresholds each check used, counts, checks skipped and why
LEAKAGE = "leakage.parquet"             # training <-> test/val pairs of identical or near-identical images
SIGNALS = "signals.parquet"             # one row per training sample, one column per signal (curator.columns)
AUDIT = "audit.parquet"                 # scores, flags, suggestions (curator.columns)
CLASSES = "classes.parquet"             # per-class findings
TRANSITION = "transition.npy"           # (C, C) estimated noise transition T[true, given]
POSTERIOR = "posterior.npy"             # (N_train, C) float16 p(true class | image, label)
DIAGNOSTICS = "diagnostics.json"        # flagged share, label agreement, warnings, the evidence grade (curator.audit.grade)
METRICS = "metrics.json"                # evaluation against known truth
REPORT = "report.html"
DECISIONS = "decisions.parquet"         # review decisions saved by the explorer: an append-only log (curator.review)
SPOT_CHECK = "spot_check.json"          # the spot check's draw and estimated flag precision (curator.audit.spot_check)
UMAP = "umap.parquet"                   # the explorer's 2-D map


def head_file(head: str) -> str:
    """RUN/heads/<head>.npz: the head's probabilities, signal columns and extras."""
    return f"heads/{head}.npz"


def history_file(head: str) -> str:
    """RUN/history/<head>.npz: the head's per-epoch, per-sample records."""
    return f"history/{head}.npz"
