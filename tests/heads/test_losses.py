"""The loss maths against independent references (scipy's Lambert W, numerical minimisation,
hand computations)."""
import math

import numpy as np
import pytest
import torch
from scipy.optimize import minimize_scalar
from scipy.special import lambertw

from curator.heads import losses

TAU = math.log(10)
LAM = 4.0


def test_lambert_w0_matches_scipy_on_its_domain():
    z = np.concatenate([np.linspace(-1 / math.e, 0, 400)[1:], np.linspace(0, 100, 800),
                        [-0.3678794, -0.25, -0.2499, 2.999, 3.0, 1e4]])
    ours = losses.lambert_w0(torch.tensor(z, dtype=torch.float64)).numpy()
    ref = lambertw(z, 0).real
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-7)  # near -1/e W has a sqrt singularity
    assert np.isnan(losses.lambert_w0(torch.tensor([-0.5])).item())  # below -1/e: not real
    # the float nearest to -1/e lies a hair below it (scipy: nan); rounding is tolerated: W = -1
    assert losses.lambert_w0(torch.tensor([-1 / math.e], dtype=torch.float64)).item() == pytest.approx(-1.0, abs=1e-7)


def test_lambert_w0_keeps_float32_dtype():
    w = losses.lambert_w0(torch.tensor([0.0, 1.0], dtype=torch.float32))
    assert w.dtype == torch.float32
    assert abs(w[1].item() - 0.5671432904) < 1e-6  # omega constant


def _closed_form_scipy(loss):
    beta = max(-2 / math.e, (loss - TAU) / LAM)
    return math.exp(-lambertw(0.5 * beta, 0).real)


def _numerical_sigma(loss):
    """argmin over σ ∈ (0, e] of (ℓ − τ)σ + λ(log σ)², searched on u = log σ ∈ (−30, 1]."""
    f = lambda u: (loss - TAU) * math.exp(u) + LAM * u * u  # noqa: E731
    res = minimize_scalar(f, bounds=(-30.0, 1.0), method="bounded", options={"xatol": 1e-10})
    return math.exp(res.x)


LOSS_GRID = [0.0, 1e-4, 0.05, 0.5, 1.0, 1.5, TAU - 0.1, TAU, TAU + 0.1, 3.0, 5.0, 10.0, 30.0]


def test_superloss_sigma_matches_scipy_closed_form():
    ell = torch.tensor(LOSS_GRID, dtype=torch.float64)
    ours = losses.superloss_sigma(ell, TAU, LAM).numpy()
    np.testing.assert_allclose(ours, [_closed_form_scipy(v) for v in LOSS_GRID], rtol=1e-9)


@pytest.mark.parametrize("lam", [0.25, 1.0, 4.0])
def test_superloss_sigma_is_the_numerical_minimiser(lam):
    global LAM
    old, LAM = LAM, lam
    try:
        ell = np.array(LOSS_GRID)
        ours = losses.superloss_sigma(torch.tensor(ell), TAU, lam).numpy()
        ref = np.array([_numerical_sigma(v) for v in ell])
        np.testing.assert_allclose(ours, ref, rtol=2e-5)
        # where ℓ − τ < −2λ/e (far below τ) the clamp bites: no interior stationary point remains,
        # the objective is still falling at σ = e, and the closed form returns that boundary σ* = e
        clamped = (ell - TAU) / lam < -2 / math.e
        np.testing.assert_allclose(ours[clamped], math.e, rtol=1e-9)
        for v in ell[clamped]:
            assert (v - TAU) * math.e + 2 * lam * 1.0 < 0  # d/du of the objective at u = log σ = 1
        assert (~clamped).any()
    finally:
        LAM = old


def test_sigma_is_one_at_tau_and_ordered_by_loss():
    ell = torch.tensor([TAU, 0.1, 5.0])
    s = losses.superloss_sigma(ell, TAU, LAM)
    assert s[0].item() == pytest.approx(1.0, abs=1e-6)
    assert s[1] > 1 > s[2]


def test_superloss_value_and_gradient():
    ell = torch.tensor([0.3, 2.0, 7.0], dtype=torch.float64, requires_grad=True)
    out = losses.superloss(ell, TAU, LAM)
    sigma = losses.superloss_sigma(ell.detach(), TAU, LAM)
    expected = (ell.detach() - TAU) * sigma + LAM * torch.log(sigma) ** 2
    torch.testing.assert_close(out.detach(), expected)
    out.sum().backward()  # σ* is a constant: dL_SL/dℓ = σ*
    torch.testing.assert_close(ell.grad, sigma)


def test_logit_adjustment_by_hand():
    logits = torch.tensor([[1.0, 2.0, 3.0], [0.5, -1.0, 0.0]])
    counts = np.array([1, 2, 7])
    log_prior = losses.log_class_prior(counts)
    adjusted = losses.logit_adjusted_logits(logits, log_prior)
    by_hand = [[1 + math.log(0.1), 2 + math.log(0.2), 3 + math.log(0.7)],
               [0.5 + math.log(0.1), -1 + math.log(0.2), 0 + math.log(0.7)]]
    np.testing.assert_allclose(adjusted.numpy(), by_hand, rtol=1e-6)
    targets = torch.tensor([0, 2])
    ce = losses.la_cross_entropy(logits, targets, log_prior).numpy()
    row = np.array(by_hand)
    by_hand_ce = [-(row[i, t] - np.log(np.exp(row[i]).sum())) for i, t in enumerate([0, 2])]
    np.testing.assert_allclose(ce, by_hand_ce, rtol=1e-6)


def test_class_balanced_weights_by_hand():
    w = losses.class_balanced_weights(np.array([10, 1, 0]), beta=0.9).numpy()
    eff = np.array([(1 - 0.9 ** 10) / 0.1, 1.0])
    inv = 1 / eff
    np.testing.assert_allclose(w[:2], inv * 2 / inv.sum(), rtol=1e-6)
    assert w[2] == 0.0


def test_focal_reduces_to_cross_entropy_and_downweights_easy():
    logits = torch.tensor([[4.0, 0.0], [0.0, 0.1]])
    t = torch.tensor([0, 0])
    ce = torch.nn.functional.cross_entropy(logits, t, reduction="none")
    torch.testing.assert_close(losses.focal_loss(logits, t, gamma=0.0), ce)
    f2 = losses.focal_loss(logits, t, gamma=2.0)
    assert (f2 / ce)[0] < (f2 / ce)[1] < 1


def test_ldam_margins_and_loss():
    m = losses.ldam_margins(np.array([10000, 1]), max_margin=0.5).numpy()
    np.testing.assert_allclose(m, [0.05, 0.5], rtol=1e-6)  # ∝ n^(-1/4): 10000^(-1/4) = 0.1
    cos = torch.tensor([[0.3, 0.1]])
    out = losses.ldam_loss(cos, torch.tensor([1]), torch.tensor(m), scale=10.0)
    ref = torch.nn.functional.cross_entropy(torch.tensor([[3.0, 10 * (0.1 - 0.5)]]), torch.tensor([1]), reduction="none")
    torch.testing.assert_close(out, ref)

