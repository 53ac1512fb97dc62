"""Aggregation: from the run's evidence and the given labels to one label-issue score per sample.

The audit treats "is this label wrong?" as posterior inference, so the score is a probability in
[0, 1] that needs no clean data and does not punish rare classes (docs/audit.md explains why):

1. class-balanced likelihoods L (N x C): the mean of the out-of-fold, class-balanced linear probe's
   probabilities and a class-balanced similarity-weighted vote of the kNN graph (both from
   `curator.evidence`, weight ``knn_weight``); each estimates p(x | c) up to a constant, i.e. a posterior
   under a uniform class prior. A class that no sample carries has no evidence and gets likelihood 0;
2. (not with the user's --pred-probs: they are posteriors under the prior their model was trained with, often
   over-confident, and EM on them collapses classes — CIFAR-10N `worse`, own cross-fitted logistic regression: one
   class's prior 0.022 for 0.10 true, AUROC 0.856 against 0.925 without EM; the prior is then uniform, p(c | x) = L)
   the true class prior π by EM (Saerens, Latinne & Decaestecker 2002, "Adjusting the outputs of a
   classifier to new a priori probabilities"), shrunk a little toward uniform (``prior_smoothing``), so
   p(c | x) ∝ L_c π_c uses the *estimated true* class sizes, not the noisy label histogram (docs/audit.md, class-size error);
3. the noise transition T[c, l] = P(given l | true c) from the soft confident joint Σ_i p(c | x_i) 1[ỹ_i = l]
   (confident learning's joint, with probabilities instead of counts), its noise rate pooled over the true classes
   (`pooled_transition`: each class keeps where its wrong labels go, all share the joint's overall noise rate,
   because a per-class rate measures the evidence's confusion more than the noise);
4. the label posterior p(c | x, ỹ) ∝ p(c | x) T[c, ỹ]; the label-issue score is
   1 − p(ỹ | x, ỹ), the flag is score > threshold (0.5 = the Bayes decision); the suggested label of a
   flagged sample is the most likely other class under a uniform class prior (``tail_suggestions``: the
   per-class fairest choice, so rare classes get their members back; with it off, the most probable other
   class under p(c | x, ỹ)), and of an unflagged sample the most probable class of the image (argmax p(c | x),
   ``unflagged_suggestion``); the confidence is always the suggestion's posterior p(c | x, ỹ), which is what
   the relabel export thresholds;
5. the evidence grade (`curator.audit.grade`), read from the first round: with weak evidence at most
   ``WEAK_REVIEW_FACTOR`` × (the noise rate the evidence supports) × N of the samples above the threshold are
   flagged, the highest scores first, and the posterior's odds of a wrong label are lowered by one factor so that
   it believes only that noise rate (`temper_posterior`: the order and the flags stay, the claimed noise shrinks);
6. self-training: the probe is re-fitted on the same folds and the kNN vote re-weighted with every sample
   weighted by p(ỹ | x, ỹ), so likely-wrong labels stop teaching them, and steps 1–4 repeat (``rounds``).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from curator.audit.classes import soft_joint
from curator.audit.config import AuditConfig
from curator.audit.grade import cap_flags, grade_evidence, temper_posterior
from curator.evidence import Evidence, KnnGraph

LOG = logging.getLogger(__name__)
#: joins the audit stage's fingerprint: bump it when the same inputs give other outputs, so existing run
#: directories are re-scored on the next `curator audit` (2: the grade's separability under the class prior; 3: patch
#: k-means features grade at most weak)
METHOD_VERSION = 3
EPS = 1e-12


@dataclass
class AuditResult:
    table: pd.DataFrame            # audit.parquet: sample_id, label, label_issue_score, is_label_issue, ...
    posterior: np.ndarray          # (N, C) p(c | x, ỹ): the audit's belief about each sample's true class
    class_posterior: np.ndarray    # (N, C) p(c | x): ignoring the given label
    prior: np.ndarray              # (C,) estimated true class prior
    evidence: dict = field(default_factory=dict)  # the evidence grade and its numbers (curator.audit.grade)


def _normalise(P: np.ndarray) -> np.ndarray:
    return P / np.maximum(P.sum(1, keepdims=True), EPS)


def knn_likelihood(graph: KnnGraph, labels: np.ndarray, weights: np.ndarray, n_classes: int) -> np.ndarray:
    """Class-balanced kNN vote (N, C): Σ_j s_ij q_jc / Σ_j q_jc, normalised, with q_j = w_j · onehot(ỹ_j).

    Dividing by each class's total mass removes the labelled prior, so a tail sample whose
    neighbours are few but all of its class is not out-voted by a head class's sheer size.
    """
    Q = np.zeros((len(labels), n_classes))
    Q[np.arange(len(labels)), labels] = weights                       # (N, C)
    votes = graph.votes(Q)                                            # (N, C)
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


def pooled_transition(joint: np.ndarray) -> np.ndarray:
    """T[c, l] = P(given l | true c) (C, C) from the joint, with one noise rate for every true class: row c keeps the
    shape of its off-diagonal (which labels class c's wrong labels go to) and its share of wrong labels becomes the
    joint's overall one, ν̄ = 1 − trace(Q) / ΣQ.

    Why: the soft joint counts as noise whatever of a sample's posterior lies on other classes, so its per-class
    noise rate mostly measures how much the evidence confuses that class with others rather than how many of its
    labels are wrong, and it would shift every label's score by a confusion the likelihood has already counted
    (docs/audit.md, "The noise transition": on CIFAR-10N the per-class rates alone lower AUROC on every label set).
    Pooled, it is one number estimated from all samples; the shape, which carries the structure of the noise
    (cat ↔ dog), stays per class. It assumes the classes' noise rates differ less than their confusions do; where
    noise strikes a few classes only it costs (the same section)."""
    C = joint.shape[0]
    nu = 1.0 - np.trace(joint) / joint.sum()
    off = joint * (1.0 - np.eye(C))
    T = nu * off / np.maximum(off.sum(1, keepdims=True), EPS)      # (one class: no off-diagonal at all)
    T[np.diag_indices(C)] = 1.0 - nu
    return T


def aggregate(evidence: Evidence, cfg: AuditConfig | None = None, *, sample_ids=None,
              grade_ceiling: str | None = None) -> AuditResult:
    """Score every sample of `evidence` (its labels, kNN graph and out-of-fold probe probabilities); `grade_ceiling`:
    the best evidence grade the run's representation allows (`curator.audit.grade.REPRESENTATION_CEILING`)."""
    cfg = cfg or AuditConfig()
    y, C = evidence.labels, evidence.n_classes
    n = len(y)
    present = np.bincount(y, minlength=C) > 0       # a class nobody carries has no evidence: never suggested
    w = np.ones(n)
    rows = np.arange(n)
    for r in range(cfg.rounds + 1):
        probe = evidence.oof_probs if r == 0 else evidence.refit(w, r)
        comps = {"probe": np.asarray(probe, np.float64)}
        if evidence.graph is not None:  # no embeddings (--pred-probs alone): the probabilities are all the evidence
            comps["knn"] = knn_likelihood(evidence.graph, y, w, C)
            L = (1 - cfg.knn_weight) * comps["probe"] + cfg.knn_weight * comps["knn"]
        else:
            L = comps["probe"].copy()
        L = _normalise(L * present[None, :])
        if evidence.source == "pred_probs":  # the user's posteriors already carry their training prior (below)
            prior = present.astype(np.float64)
        else:
            prior = smooth_prior(estimate_prior_em(L, iters=cfg.em_iters), cfg.prior_smoothing) * present
        prior /= prior.sum()
        Px = _normalise(L * prior[None, :])                     # p(c | x)
        T = pooled_transition(soft_joint(Px, y, C) + 1e-3)       # (C, C) P(given l | true c); smoothed: none impossible
        post = _normalise(Px * T[:, y].T)                        # p(c | x, ỹ)
        w = post[rows, y]                                        # next round: re-weight by P(label correct)
        if r == 0:  # the grade reads the first round's evidence, before self-training re-weights it
            grade = grade_evidence(comps["probe"], comps.get("knn"), L, y, prior=prior, source=evidence.source,
                                   seed=evidence.seed, factor=cfg.weak_evidence_factor, ceiling=grade_ceiling)
        LOG.info("audit round %d/%d: %.1f%% of labels believed wrong", r + 1, cfg.rounds + 1, 100 * np.mean(w < 0.5))
    score = 1.0 - post[rows, y]
    flag = cap_flags(score > cfg.threshold, score, grade.get("flag_cap"))  # weak evidence: a list sized by ν̂
    grade["flagged_before_cap"] = int((score > cfg.threshold).sum())
    if grade.get("flag_cap") is not None:
        LOG.info("audit: weak evidence (separability %.2f, supported noise %.1f%%): %d of %d samples above the "
                 "threshold, at most %d flagged", grade["separability"], 100 * grade["supported_noise_rate"],
                 grade["flagged_before_cap"], n, grade["flag_cap"])
        # ... and the posterior believes only the noise the evidence supports (one factor on every sample's odds:
        # the order, hence the flags just chosen and the suggestions, stay; P(wrong) and the per-class noise shrink)
        grade["posterior_noise_before"] = float(np.mean(score))
        post, grade["prior_odds_factor"] = temper_posterior(post, y, grade["believed_noise_rate"])
        score = 1.0 - post[rows, y]
        LOG.info("audit: weak evidence: the posterior's mean P(label wrong) %.1f%% -> %.1f%% (the believed noise)",
                 100 * grade["posterior_noise_before"], 100 * float(np.mean(score)))
    # suggestions: the uniform-prior likelihood (tail_suggestions, default), which names rare true classes far more
    # often (lt100 `worse`: rescue 0.14 -> 0.43) at some cost in overall suggestion accuracy on long-tailed data
    # (0.75 -> 0.66) and none on balanced data; or the label posterior (docs/audit.md, "Suggestions")
    other = (L if cfg.tail_suggestions else post).copy()
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
    return AuditResult(table, post.astype(np.float32), Px.astype(np.float32), prior, grade)
