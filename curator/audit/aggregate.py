"""Aggregation: from embeddings, labels and signals to one label-issue score per sample.

The audit treats "is this label wrong?" as posterior inference, so the score is a probability in
[0, 1] that needs no clean data and does not punish rare classes (docs/audit.md explains why):

1. class-balanced likelihoods L (N x C): an ensemble of a cross-validated, class-balanced linear
   probe (`curator.audit.crossval`), a class-balanced similarity-weighted kNN vote, and, when
   present, the robust heads' probabilities with their labelled prior divided out;
   each estimates p(x | c) up to a constant, i.e. a posterior under a uniform class prior;
2. the true class prior π by EM (Saerens, Latinne & Decaestecker 2002, "Adjusting the outputs of a
   classifier to new a priori probabilities"), shrunk a little toward uniform (``prior_smoothing``), so
   p(c | x) ∝ L_c π_c uses the *estimated true* class sizes, not the noisy label histogram (SPEC §7);
3. the noise transition T[c, l] = P(given l | true c) from the soft confident joint
   Σ_i p(c | x_i) 1[ỹ_i = l] (confident learning's joint, with probabilities instead of counts);
4. the label posterior p(c | x, ỹ) ∝ p(c | x) T[c, ỹ]; the label-issue score is
   1 − p(ỹ | x, ỹ), the flag is score > threshold (0.5 = the Bayes decision); the suggested label of a
   flagged sample is the most likely other class under a uniform class prior (``tail_suggestions``: the
   per-class fairest choice, so rare classes get their members back; with it off, the most probable other
   class under p(c | x, ỹ)), and of an unflagged sample the most probable class of the image (argmax p(c | x),
   ``unflagged_suggestion``); the confidence is always the suggestion's posterior p(c | x, ỹ), which is what
   the relabel export thresholds;
5. self-training: the probe and the kNN vote are re-fitted on soft targets p(c | x, ỹ) (``relabel``; else
   samples are only re-weighted by p(ỹ | x, ỹ)) and steps 1–4 repeat (``rounds``).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from curator.audit.config import AuditConfig
from curator.audit.crossfit_heads import crossfit_mlp_probs
from curator.audit.crossval import crossval_probs, standardise

LOG = logging.getLogger(__name__)
EPS = 1e-12


@dataclass
class AuditResult:
    table: pd.DataFrame            # audit.parquet: sample_id, label, label_issue_score, is_label_issue, ...
    posterior: np.ndarray          # (N, C) p(c | x, ỹ): the audit's belief about each sample's true class
    class_posterior: np.ndarray    # (N, C) p(c | x): ignoring the given label
    prior: np.ndarray              # (C,) estimated true class prior
    transition: np.ndarray         # (C, C) T[true, given]
    components: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (N, C) balanced likelihoods


def _normalise(P: np.ndarray) -> np.ndarray:
    return P / np.maximum(P.sum(1, keepdims=True), EPS)


def knn_graph(X: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact cosine kNN with FAISS, self excluded: indices (N, k) int64, similarities (N, k) float32."""
    import faiss

    Z = np.ascontiguousarray(X, dtype=np.float32)
    Z = Z / np.maximum(np.linalg.norm(Z, axis=1, keepdims=True), EPS)
    k = int(min(k, len(Z) - 1))
    index = faiss.IndexFlatIP(Z.shape[1])
    index.add(Z)
    sims, idx = index.search(Z, k + 1)  # (N, k+1), usually self first
    rows = np.arange(len(Z))[:, None]
    not_self = idx != rows
    # drop the self hit (or the last neighbour when self was not returned, e.g. exact duplicates)
    keep = np.where(not_self.sum(1, keepdims=True) > k, np.arange(k + 1) < k, not_self)
    return idx[keep].reshape(len(Z), k).astype(np.int64), sims[keep].reshape(len(Z), k).astype(np.float32)


def knn_likelihood(indices: np.ndarray, similarities: np.ndarray, labels: np.ndarray, weights: np.ndarray,
                   n_classes: int, soft_targets: np.ndarray | None = None) -> np.ndarray:
    """Class-balanced kNN vote (N, C): Σ_j s_ij q_jc / Σ_j q_jc, normalised, with q_j = w_j · onehot(ỹ_j)
    (or w_j · soft_targets_j, the audit's current belief about j's true class).

    Dividing by each class's total mass removes the labelled prior, so a tail sample whose
    neighbours are few but all of its class is not out-voted by a head class's sheer size.
    """
    Q = (np.eye(n_classes)[labels] if soft_targets is None else soft_targets) * weights[:, None]  # (N, C)
    s = np.clip(similarities, 0.0, None)                              # (N, k)
    votes = np.einsum("nk,nkc->nc", s, Q[indices])                    # (N, C)
    mass = Q.sum(0)                                                   # (C,)
    votes = votes / np.maximum(mass, EPS)[None, :] + 1e-3 / max(len(labels), 1)
    return _normalise(votes)


def estimate_prior_em(L: np.ndarray, *, iters: int = 200, tol: float = 1e-7) -> np.ndarray:
    """True class prior from uniform-prior posteriors L (N, C) by EM (Saerens et al. 2002, eq. 2.9–2.10)."""
    C = L.shape[1]
    pi = np.full(C, 1.0 / C)
    for _ in range(iters):
        post = _normalise(L * pi[None, :])
        new = post.mean(0)
        if np.abs(new - pi).max() < tol:
            pi = new
            break
        pi = new
    return np.maximum(pi, EPS) / np.maximum(pi, EPS).sum()


def smooth_prior(pi: np.ndarray, strength: float) -> np.ndarray:
    """Shrink an EM prior (C,) toward uniform: (π + s/C) / (1 + s).

    A MAP-style guard: maximum-likelihood EM on mis-specified likelihoods can drive a rare class whose
    likelihood overlaps a head class's to ~0 (on long-tailed CIFAR-10N `worse`, "ship": 9 estimated vs 83 true),
    after which its members can never be suggested. s = 0 is plain EM.
    """
    if strength <= 0:
        return pi
    return (pi + strength / len(pi)) / (1.0 + strength)


def estimate_transition(class_posterior: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Soft confident joint → T[c, l] = P(given label l | true class c), rows sum to 1 (C, C)."""
    joint = np.zeros((n_classes, n_classes), np.float64)
    for l in range(n_classes):
        joint[:, l] = class_posterior[labels == l].sum(0)
    joint += 1e-3  # a little smoothing so no transition is impossible
    return joint / joint.sum(1, keepdims=True)


def prior_free(P: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Divide a head's labelled-prior posteriors by the labelled class frequencies (N, C)."""
    freq = np.bincount(labels, minlength=n_classes).astype(np.float64) + 1.0
    return _normalise(P / (freq / freq.sum())[None, :])


def aggregate(embeddings: np.ndarray, labels: np.ndarray, n_classes: int, cfg: AuditConfig | None = None, *,
              sample_ids=None, knn: tuple[np.ndarray, np.ndarray] | None = None,
              head_probs: dict[str, np.ndarray] | None = None,
              crossfit_probs: np.ndarray | None = None) -> AuditResult:
    """Score every sample. embeddings (N, d); labels (N,) given labels; knn = (indices, similarities).

    crossfit_probs (N, C): precomputed out-of-fold MLP-head probabilities (else trained here when
    ``cfg.crossfit_weight`` > 0)."""
    cfg = cfg or AuditConfig()
    y = np.asarray(labels, dtype=np.int64)
    n, C = len(y), int(n_classes)
    if len(embeddings) != n:
        raise ValueError(f"embeddings have {len(embeddings)} rows but there are {n} training labels")
    if n and (y.min() < 0 or y.max() >= C):
        raise ValueError(f"labels must lie in 0..{C - 1}; found {int(y.min())}..{int(y.max())}")
    if cfg.crossfit_blend not in ("arithmetic", "geometric"):
        raise ValueError(f"audit.crossfit_blend must be 'arithmetic' or 'geometric', not {cfg.crossfit_blend!r}")
    if cfg.unflagged_suggestion not in ("image", "label"):
        raise ValueError(f"audit.unflagged_suggestion must be 'image' or 'label', not {cfg.unflagged_suggestion!r}")
    X = standardise(embeddings)
    if knn is None or knn[0].shape[1] < 1:
        knn = knn_graph(X, cfg.knn_k)
    idx, sim = knn[0][:, : cfg.knn_k], knn[1][:, : cfg.knn_k]
    heads = {h: prior_free(np.asarray(P, np.float64), y, C) for h, P in (head_probs or {}).items() if h in cfg.heads}
    w = np.ones(n)
    rows = np.arange(n)
    Q = None  # soft targets: None = the given labels (first round)
    for r in range(cfg.rounds + 1):
        comps = {"probe": crossval_probs(X, y, C, weights=w, soft_targets=Q, folds=cfg.folds, steps=cfg.probe_steps,
                                         lr=cfg.probe_lr, weight_decay=cfg.probe_weight_decay,
                                         seed=cfg.seed + 97 * r).astype(np.float64),
                 "knn": knn_likelihood(idx, sim, y, w, C, soft_targets=Q)}
        L = (1 - cfg.knn_weight) * comps["probe"] + cfg.knn_weight * comps["knn"]
        if heads and cfg.head_weight > 0:
            L = (1 - cfg.head_weight) * L + cfg.head_weight * np.mean(list(heads.values()), axis=0)
            comps.update({f"head_{h}": P for h, P in heads.items()})
        if cfg.crossfit_weight > 0:
            if crossfit_probs is None:  # fitted once on the given labels; SuperLoss does the down-weighting
                crossfit_probs = crossfit_mlp_probs(X, y, C, folds=cfg.folds, epochs=cfg.crossfit_epochs,
                                                    hidden=cfg.crossfit_hidden, sl_lambda=cfg.crossfit_sl_lambda,
                                                    seed=cfg.seed)
            comps["crossfit_mlp"] = F = _normalise(np.asarray(crossfit_probs, np.float64) + 1e-6)
            a = cfg.crossfit_weight
            L = ((1 - a) * L + a * F if cfg.crossfit_blend == "arithmetic"
                 else _normalise(np.exp((1 - a) * np.log(L + EPS) + a * np.log(F))))
        prior = smooth_prior(estimate_prior_em(L, iters=cfg.em_iters), cfg.prior_smoothing)
        Px = _normalise(L * prior[None, :])                     # p(c | x)
        T = estimate_transition(Px, y, C)                        # (C, C)
        post = _normalise(Px * T[:, y].T)                        # p(c | x, ỹ)
        if cfg.relabel:
            Q = post                                             # self-training on the audit's beliefs
        else:
            w = post[rows, y]                                    # re-weighting only
        LOG.info("audit round %d/%d: %.1f%% of labels believed wrong", r + 1, cfg.rounds + 1, 100 * np.mean(post[rows, y] < 0.5))
    score = 1.0 - post[rows, y]
    flag = score > cfg.threshold
    # suggestions: the uniform-prior likelihood (tail_suggestions, default), which names rare true classes far more
    # often (lt100 `worse`: rescue 0.14 -> 0.43) at some cost in overall suggestion accuracy on long-tailed data
    # (0.75 -> 0.66) and none on balanced data; or the label posterior (docs/audit.md, "Suggestions")
    other = (_normalise(L) if cfg.tail_suggestions else post).copy()
    other[rows, y] = -1.0
    # unflagged samples: the class the image looks like, ignoring its label (p(c | x)); their label posterior's
    # argmax is nearly always the given label itself, which makes a useless suggestion for a missed error
    keep = Px if cfg.unflagged_suggestion == "image" else post
    suggested = np.where(flag, other.argmax(1), keep.argmax(1))
    table = pd.DataFrame({
        "sample_id": pd.Series(sample_ids if sample_ids is not None else [str(i) for i in range(n)], dtype=str),
        "label": y, "label_issue_score": score.astype(np.float32), "is_label_issue": flag,
        "suggested_label": suggested.astype(np.int64),
        "suggested_label_confidence": post[rows, suggested].astype(np.float32),
    })
    table["rank"] = table["label_issue_score"].rank(ascending=False, method="first").astype(np.int64)
    return AuditResult(table, post.astype(np.float32), Px.astype(np.float32), prior, T, comps)
