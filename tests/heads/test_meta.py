"""Pieces shared by GDW and FSR (curator/heads/meta.py): the momentum dictionary and the schedule."""
import math

import numpy as np
import torch
import torch.nn.functional as F

from curator.heads.meta import MomentumDictionary, meta_margin, reward_gradient, set_cosine_lr
from curator.heads.mlp import ProjectionHead


def _identity_head(c=2):
    """A one-layer head (no trunk) whose logits are its inputs: features = X, logits = X."""
    model = ProjectionHead(c, c, n_layers=1)
    with torch.no_grad():
        model.classifier.weight.copy_(torch.eye(c))
        model.classifier.bias.zero_()
    return model


def _separable(n_per=20, seed=0):
    """Two classes along the axes; sample 0 looks like class 0 but carries label 1. Features = logits."""
    g = torch.Generator().manual_seed(seed)
    feats = torch.cat([torch.tensor([3.0, 0.0]) + 0.3 * torch.randn(n_per, 2, generator=g),
                       torch.tensor([0.0, 3.0]) + 0.3 * torch.randn(n_per, 2, generator=g)])
    labels = np.repeat([0, 1], n_per)
    labels[0] = 1
    return feats, labels


def test_momentum_dictionary_bias_corrects_and_drops_the_contradicting_sample():
    feats, labels = _separable()
    logits = feats.clone()
    onehot = F.one_hot(torch.from_numpy(labels), 2).float()
    d = MomentumDictionary(labels, 2, per_class=10, max_class_fraction=0.5, momentum=0.9, step=1.0,
                           normalize_reward=True, gate=True, rng=np.random.default_rng(0))
    assert np.bincount(labels[d.pool], minlength=2).tolist() == [10, 10]
    pool0 = d.pool.copy()
    model = _identity_head()
    first, first_logits = d.update(model, feats, onehot)
    torch.testing.assert_close(first_logits, logits)
    gw, gb = reward_gradient(feats[pool0], torch.softmax(logits[pool0], 1), onehot[pool0], normalize=True)
    p = meta_margin(feats, logits, onehot, gw, gb, 1.0).numpy()
    np.testing.assert_allclose(first, p, rtol=1e-6)  # bias correction: the first P̂ is P itself
    assert first[0] < 0 < np.median(first)  # the mislabeled sample's loss rises when the dictionary is learned
    assert 0 not in d.pool  # the gate and the meta-margin keep it out
    second, _ = d.update(model, feats, onehot)
    assert np.isfinite(second).all() and d.updates == 2


def test_dictionary_candidates_restrict_the_pool():
    feats, labels = _separable()
    cand = np.arange(0, 40, 2)
    d = MomentumDictionary(labels, 2, per_class=50, max_class_fraction=1.0, momentum=0.5, step=1.0,
                           normalize_reward=False, gate=False, rng=np.random.default_rng(0), candidates=cand)
    d.update(_identity_head(), feats, F.one_hot(torch.from_numpy(labels), 2).float())
    assert set(d.pool) <= set(cand)


def test_cosine_lr():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    assert set_cosine_lr(opt, 0.2, 0, 10) == 0.2
    assert math.isclose(set_cosine_lr(opt, 0.2, 5, 10), 0.1)
    last = set_cosine_lr(opt, 0.2, 10, 10)
    assert opt.param_groups[0]["lr"] == last and last < 1e-12
