"""FSR head (paper 004): meta-margin against a hand-built linear model, sample weights, digits separation."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

from curator.columns import COLUMNS as SIGNAL_SPECS
from curator.config import ConfigError
from curator.heads.config import FSRConfig, HeadsConfig
from curator.heads.fsr import fsr_sample_weights
from curator.heads.meta import fetch_balanced_batch, gradient_alignment, meta_margin, reward_gradient
from curator.heads.registry import train_head


def _case(seed=0, n=9, m=6, h=4, c=3):
    g = torch.Generator().manual_seed(seed)
    W, b = torch.randn(c, h, generator=g), torch.randn(c, generator=g)
    F_tr, y_tr = torch.randn(n, h, generator=g), torch.randint(0, c, (n,), generator=g)
    F_r, y_r = torch.randn(m, h, generator=g), torch.randint(0, c, (m,), generator=g)
    return W, b, F_tr, y_tr, F_r, y_r


def test_meta_margin_equals_loss_drop_after_one_sgd_step_on_dictionary():
    W, b, F_tr, y_tr, F_r, y_r = _case()
    lr = 0.7
    # by hand: Θ* = Θ − lr ∇ mean CE(dictionary), through the last (only) layer, with autograd
    Wp, bp = W.clone().requires_grad_(True), b.clone().requires_grad_(True)
    gW, gb = torch.autograd.grad(F.cross_entropy(F_r @ Wp.T + bp, y_r), [Wp, bp])
    W_star, b_star = W - lr * gW, b - lr * gb
    expected = (F.cross_entropy(F_tr @ W.T + b, y_tr, reduction="none")
                - F.cross_entropy(F_tr @ W_star.T + b_star, y_tr, reduction="none"))
    # implementation: closed-form reward gradient + meta_margin
    onehot_r = F.one_hot(y_r, 3).float()
    G_W, G_b = reward_gradient(F_r, torch.softmax(F_r @ W.T + b, 1), onehot_r)
    torch.testing.assert_close(G_W, gW)
    torch.testing.assert_close(G_b, gb)
    got = meta_margin(F_tr, F_tr @ W.T + b, F.one_hot(y_tr, 3).float(), G_W, G_b, lr)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    assert expected.abs().max() > 1e-3


def test_gradient_alignment_equals_inner_product_of_per_sample_gradients():
    W, b, F_tr, y_tr, F_r, y_r = _case(seed=2)
    G_W, G_b = reward_gradient(F_r, torch.softmax(F_r @ W.T + b, 1), F.one_hot(y_r, 3).float())
    got = gradient_alignment(F_tr, torch.softmax(F_tr @ W.T + b, 1), F.one_hot(y_tr, 3).float(), G_W, G_b)
    for i in range(len(y_tr)):
        Wp, bp = W.clone().requires_grad_(True), b.clone().requires_grad_(True)
        gW, gb = torch.autograd.grad(F.cross_entropy((F_tr[i] @ Wp.T + bp)[None], y_tr[i:i + 1]), [Wp, bp])
        assert float(got[i]) == pytest.approx(float((gW * G_W).sum() + (gb * G_b).sum()), rel=1e-4, abs=1e-6)


def test_sample_weights_downweight_a_sample_that_contradicts_the_dictionary():
    # two well-separated classes; the dictionary is clean, one training sample carries the wrong label
    F_r = torch.tensor([[3.0, 0.0], [3.2, 0.1], [0.0, 3.0], [0.1, 3.1]])
    y_r = torch.tensor([0, 0, 1, 1])
    F_tr = torch.tensor([[2.9, 0.0], [0.0, 2.8], [3.1, 0.2], [0.2, 3.0]])
    y_tr = torch.tensor([0, 1, 1, 1])  # sample 2 looks like class 0 but is labelled 1
    W, b = torch.tensor([[0.3, -0.3], [-0.3, 0.3]]), torch.zeros(2)
    w = fsr_sample_weights(F_tr, F_tr @ W.T + b, F.one_hot(y_tr, 2).float(), W, b, F_r, F.one_hot(y_r, 2).float(),
                           meta_lr=0.1, weight_lr=1.0)
    assert float(w.sum()) == pytest.approx(1.0) and (w >= 0).all()
    assert int(w.argmin()) == 2 and float(w[2]) < 0.5 * float(w[[0, 1, 3]].min())
    shifted = fsr_sample_weights(F_tr, F_tr @ W.T + b, F.one_hot(y_tr, 2).float(), W, b, F_r,
                                 F.one_hot(y_r, 2).float(), meta_lr=0.1, weight_lr=1.0, shift=True)
    assert (shifted > 0).all() and int(shifted.argmin()) == 2


def test_balanced_reward_batch():
    labels = np.repeat(np.arange(3), [50, 20, 6])
    dictionary = np.concatenate([np.arange(0, 30), np.arange(50, 60), np.arange(70, 73)])
    batch = fetch_balanced_batch(dictionary, labels, 9, np.random.default_rng(0))
    assert np.bincount(labels[batch], minlength=3).tolist() == [3, 3, 3]
    assert set(batch) <= set(dictionary)


def test_signals_declared_and_config_validated():
    for name in ("fsr_meta_margin", "fsr_weight", "fsr_in_dictionary", "fsr_pseudo_label",
                 "fsr_prob_label", "fsr_pred", "fsr_margin", "fsr_loss"):
        assert name in SIGNAL_SPECS
    with pytest.raises(ConfigError, match="heads.fsr: unknown key"):  # checked when the recipe is read
        HeadsConfig(fsr={"not_a_key": 1})
    with pytest.raises(ConfigError, match="warmup_epochs"):
        HeadsConfig.from_dict({"fsr": {"epochs": 2, "warmup_epochs": 2}})


@pytest.mark.slow
def test_fsr_meta_margin_separates_planted_noise_on_long_tailed_digits():
    from gdw_fsr_data import noisy_long_tailed_digits

    X, y, t = noisy_long_tailed_digits(seed=0)
    noisy = y != t
    r = train_head("fsr", X, y, 10, HeadsConfig(fsr=FSRConfig(epochs=12)), seed=0)
    n = len(y)
    assert r.probs.shape == (n, 10)
    assert set(r.history) == {"meta_margin", "weight", "loss", "margin"} and all(v.shape == (12, n) for v in r.history.values())
    auroc = roc_auc_score(~noisy, r.signals["fsr_meta_margin"])  # documented: higher = clean
    assert auroc >= 0.85, auroc
    assert roc_auc_score(~noisy, r.signals["fsr_weight"]) > 0.7
    d = r.extras["dictionary"]
    assert r.signals["fsr_in_dictionary"].sum() == len(d) and (~noisy[d]).mean() > 0.8  # purer than the 70% base
    assert (r.signals["fsr_pseudo_label"][noisy] == t[noisy]).mean() > 0.5
