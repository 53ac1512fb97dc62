"""CBS + RRS head (paper 002, "To balance or not to balance", §3 and Algorithm 1).

A shared trainable trunk φ (the projection head's hidden layer) feeds two classifiers:

- the primary classifier h sees class-balanced batches B_CBS: k classes drawn without replacement
  (every class visited once per cycle through a random class order), Z samples per class;
- the auxiliary classifier h_a sees regular random batches B_RRS of the same size.

Both batches are concatenated into one forward pass through φ (Algorithm 1, lines 8-10); the loss
is λ1·l_CBS + λ2·l_RRS with λ1 : λ2 = 0.5 : 1 (paper §4). h only receives the CBS loss, φ both.
After training h_a is discarded: probabilities, predictions and margins come from h (the
tail-aware classifier whose margins feed the audit).

The paper's third, self-supervised auxiliary task (rotation prediction, λ3 = 1) needs images, not
cached embeddings; it belongs to representation learning (curator.ssl), not to this head.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from curator.heads.base import HeadData, HeadResult
from curator.heads.config import HeadsConfig
from curator.heads.mlp import ProjectionHead
from curator.heads.records import common_signals
from curator.heads.train_loop import Objective, fit


def class_balanced_batches(y: np.ndarray, k: int, z: int, n_batches: int,
                           rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Yield `n_batches` index arrays of k classes × Z samples (paper 002 Algorithm 1, lines 3-7).

    Classes come from a random order of all classes consumed k at a time (a new order starts when
    one is used up), so every class with samples is visited once per cycle of about C / k batches
    and no class repeats inside a batch; a class with fewer than Z samples is sampled with
    replacement.
    y (N,) labels, -1 (unlabeled) ignored. Each batch is (k·Z,), grouped by class.
    """
    y = np.asarray(y)
    classes = np.unique(y[y >= 0])
    members = {c: np.flatnonzero(y == c) for c in classes}
    k = min(k, len(classes))
    pending: list = []
    for _ in range(n_batches):
        chosen: list = []
        while len(chosen) < k:
            if not pending:
                pending = list(rng.permutation(classes))
            for j, c in enumerate(pending):
                if c not in chosen:
                    chosen.append(pending.pop(j))
                    break
            else:  # every class still pending is already in this batch: start the next cycle
                pending += list(rng.permutation(classes))
        yield np.concatenate([rng.choice(members[c], z, replace=len(members[c]) < z) for c in chosen])


def batch_shape(n_classes_present: int, cfg: HeadsConfig) -> tuple[int, int]:
    """(k, Z): k = cfg value or all classes (capped so k·Z <= batch size), Z = cfg value or batch // k."""
    k = cfg.cbs_classes_per_batch or n_classes_present
    k = max(1, min(k, n_classes_present, cfg.batch_size))
    z = cfg.cbs_per_class or max(1, cfg.batch_size // k)
    return k, z


class CBSHead(ProjectionHead):
    """ProjectionHead (φ = ``features``, h = ``classifier``) plus the auxiliary RRS classifier h_a."""

    def __init__(self, d_in: int, n_classes: int, **kw):
        super().__init__(d_in, n_classes, **kw)
        self.aux_classifier = nn.Linear(self.out_dim, n_classes)


class CBSRRS(Objective):
    def __init__(self, k: int, z: int, w_cbs: float, w_rrs: float):
        self.k, self.z, self.w_cbs, self.w_rrs = k, z, w_cbs, w_rrs

    def batches(self, rng, train_idx, batch_size):
        y_train = self.y_np[train_idx]
        n_batches = max(1, int(np.ceil(len(train_idx) / batch_size)))
        perm = rng.permutation(train_idx)
        cbs = class_balanced_batches(y_train, self.k, self.z, n_batches, rng)
        for b, local in enumerate(cbs):
            rrs = perm[(b * batch_size) % len(perm):][:batch_size]
            yield train_idx[local], rrs

    def setup(self, model, X, y, n_classes, epochs):
        super().setup(model, X, y, n_classes, epochs)
        self.y_np = y.cpu().numpy()

    def batch_loss(self, model, take, y, batch):
        cbs_idx, rrs_idx = batch
        feats = model.features(take(np.concatenate([cbs_idx, rrs_idx])))  # (Bc + Br, h)
        f_cbs, f_rrs = feats[:len(cbs_idx)], feats[len(cbs_idx):]
        y_cbs = y[torch.as_tensor(cbs_idx, device=y.device)]
        y_rrs = y[torch.as_tensor(rrs_idx, device=y.device)]
        l_cbs = F.cross_entropy(model.classifier(f_cbs), y_cbs)
        l_rrs = F.cross_entropy(model.aux_classifier(f_rrs), y_rrs)
        return self.w_cbs * l_cbs + self.w_rrs * l_rrs


def train_cbs(name: str, data: HeadData, cfg: HeadsConfig) -> HeadResult:
    """Train the CBS+RRS head on standardised inputs; returns the primary classifier's results."""
    if cfg.n_layers < 2:
        raise ValueError(f"{name}: needs a trunk to share (n_layers >= 2)")
    torch.manual_seed(data.seed)
    present = int(len(np.unique(data.y[data.y >= 0])))
    k, z = batch_shape(present, cfg)
    model = CBSHead(data.X.shape[1], data.n_classes, hidden=cfg.hidden, n_layers=cfg.n_layers,
                    dropout=cfg.dropout).to(data.X.device)
    objective = CBSRRS(k, z, cfg.cbs_weight, cfg.rrs_weight)
    probs, history = fit(model, data.X, data.y, data.n_classes, objective, epochs=cfg.epochs,
                         batch_size=cfg.batch_size, lr=cfg.lr, weight_decay=cfg.weight_decay, seed=data.seed,
                         views=data.views, name=name)
    signals = common_signals(name, probs, data.y, history, cfg.last_epochs)
    return HeadResult(name, probs, signals, history, {"cbs_k": np.array(k), "cbs_z": np.array(z)}, model.eval())
