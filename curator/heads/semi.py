"""Semi-supervised relabelling by self-training (paper 001 §3, "Semi-Supervised Imbalanced Learning").

Paper 001 trains an intermediate classifier f̂ on the labelled data D_L, pseudo-labels the unlabeled
data D_U with it, and trains a final model on L(D_L, θ) + ω·L(D_U, θ) (ω = unlabeled weight).
curator uses it to relabel:

- D_U = the samples the robust teacher head distrusts (default: SuperLoss σ* < 1, i.e. loss above
  τ = log C, mean over the last epochs; a teacher without σ* distrusts samples it predicts as
  another class) plus the user's extra unlabeled rows (label −1);
- D_L = the remaining samples with their given labels;
- pseudo-labels ŷ = argmax of the teacher's probabilities on D_U (only those with teacher
  confidence >= `semi_min_confidence` take part);
- the student is a fresh projection head trained with the logit-adjusted loss (paper 000 eq. 2,
  prior from the labels it trains on), unlabeled samples weighted by ω.

Outputs ``semi_pseudo_label`` (the student's argmax, for every sample) and
``semi_pseudo_confidence`` (its probability), plus ``semi_distrusted`` (sample was in D_U).
"""
from __future__ import annotations

import logging

import numpy as np
import torch

from curator.data.stats import class_counts
from curator.heads import losses
from curator.heads.base import HeadData, HeadResult
from curator.heads.config import HeadsConfig
from curator.heads.standard import build_projection_head
from curator.heads.train_loop import Objective, fit

LOG = logging.getLogger(__name__)


def distrusted_mask(y: np.ndarray, teacher: HeadResult, sigma_threshold: float = 1.0) -> np.ndarray:
    """Samples treated as unlabeled: teacher σ* below the threshold (or, without σ*, teacher
    argmax != given label), and every row with label -1. (N,) bool."""
    y = np.asarray(y)
    sigma = teacher.signals.get(f"{teacher.name}_sigma")
    if sigma is not None:
        mask = np.asarray(sigma) < sigma_threshold
    else:
        mask = teacher.probs.argmax(1) != y
    return mask | (y < 0)


class SelfTraining(Objective):
    """L = mean over the batch of w_i · ℓ_LA(x_i, t_i): t = given label (w = 1) on D_L,
    t = pseudo-label (w = ω) on D_U, w = 0 for pseudo-labels below the confidence floor."""

    def __init__(self, targets: np.ndarray, weights: np.ndarray):
        self.targets_np, self.weights_np = targets, weights

    def setup(self, model, X, y, n_classes, epochs):
        super().setup(model, X, y, n_classes, epochs)
        self.targets = torch.as_tensor(self.targets_np, device=X.device)
        self.weights = torch.as_tensor(self.weights_np, dtype=torch.float32, device=X.device)
        used = self.targets_np[self.weights_np > 0]
        self.log_prior = losses.log_class_prior(class_counts(used, n_classes)).to(X.device)

    def batches(self, rng, train_idx, batch_size):
        # every sample with a target and positive weight trains, labelled or not
        usable = np.flatnonzero(self.weights_np > 0)
        return super().batches(rng, usable, batch_size)

    def batch_loss(self, model, take, y, batch):
        idx = torch.as_tensor(batch, device=y.device)
        per = losses.la_cross_entropy(model(take(batch)), self.targets[idx], self.log_prior)
        return (self.weights[idx] * per).sum() / self.weights[idx].sum().clamp_min(1e-12)

    def per_sample_loss(self, logits, targets):
        return losses.la_cross_entropy(logits, targets, self.log_prior)


def train_semi(name: str, data: HeadData, cfg: HeadsConfig) -> HeadResult:
    """Self-train a student on standardised inputs from the teacher's pseudo-labels (paper 001).

    data.y (N,) given labels, -1 for extra unlabeled rows (they join D_U); data.teacher.probs must be (N, C).
    """
    y, n_classes, teacher = data.y, data.n_classes, data.teacher
    if teacher is None:
        raise ValueError(f"{name}: needs the result of its teacher head ({cfg.semi_teacher!r})")
    if teacher.probs.shape != (len(y), n_classes):
        raise ValueError(f"{name}: teacher {teacher.name!r} probs have shape {teacher.probs.shape}, "
                         f"expected ({len(y)}, {n_classes})")
    unl = distrusted_mask(y, teacher, cfg.semi_sigma_threshold)
    pseudo = teacher.probs.argmax(1)
    conf = teacher.probs.max(1)
    targets = np.where(unl, pseudo, y)
    weights = np.where(unl, np.where(conf >= cfg.semi_min_confidence, cfg.semi_unlabeled_weight, 0.0), 1.0)
    LOG.info("%s: %d of %d samples distrusted by %s and pseudo-labelled (%d extra unlabeled rows)",
             name, int(unl.sum()), len(y), teacher.name, int((y < 0).sum()))
    torch.manual_seed(data.seed)
    model = build_projection_head(data.X.shape[1], n_classes, cfg).to(data.X.device)
    objective = SelfTraining(targets, weights.astype(np.float32))
    # train (and record) against the targets, so distrusted rows and rows with y = -1 learn their pseudo-label;
    # only rows whose pseudo-label is below the confidence floor count as unlabeled for the trainer
    fit_labels = np.where(weights > 0, targets, -1)
    probs, history = fit(model, data.X, fit_labels, n_classes, objective, epochs=cfg.epochs,
                         batch_size=cfg.batch_size, lr=cfg.lr, weight_decay=cfg.weight_decay, seed=data.seed,
                         views=data.views, name=name)
    signals = {
        f"{name}_pseudo_label": probs.argmax(1).astype(np.int64),
        f"{name}_pseudo_confidence": probs.max(1).astype(np.float32),
        f"{name}_distrusted": unl,
    }
    extras = {"teacher_pseudo_label": pseudo.astype(np.int64), "train_target": targets.astype(np.int64)}
    return HeadResult(name, probs, signals, history, extras, model.eval())
