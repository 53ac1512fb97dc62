"""The evidence every later stage reads, computed once per run (ARCHITECTURE.md, docs/signals.md).

From the embeddings and the given labels, two things are computed once and written to the run
directory; the signals table, the audit, the explorer and the confident-learning columns read them and
nothing recomputes them:

- the **kNN graph** (`curator.evidence.graph`, RUN/knn.npz): k nearest neighbours of every training
  sample, self excluded, built by the one kNN engine (`curator.evidence.knn.build_index`: exact or IVF
  by size, GPU when present);
- the **out-of-fold class probabilities** (`curator.evidence.probe`, RUN/oof_probs.npy): a class-balanced
  linear probe cross-fitted over one fold assignment (`curator.evidence.crossfit`, RUN/folds.npy), so
  every sample's probabilities come from a model that never saw its label.

Both use one normalisation of the embeddings (`standardise`: rows L2-normalised, then every dimension
z-scored); the kNN graph is cosine similarity on those features.
"""
from curator.evidence.evidence import Evidence, compute_evidence, load_evidence, write_evidence
from curator.evidence.graph import KnnGraph
from curator.evidence.probe import standardise

__all__ = ["Evidence", "KnnGraph", "compute_evidence", "load_evidence", "standardise", "write_evidence"]
