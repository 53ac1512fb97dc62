"""Validation and standardisation, done once for every head (curator/heads/inputs.py)."""
import numpy as np
import pytest
import torch

from curator.heads.inputs import StandardizedHead, standardization, validate


def test_standardization_is_population_z_score_and_leaves_constant_dims_unscaled():
    X = np.array([[1.0, 5.0, 0.0], [3.0, 5.0, 2.0], [5.0, 5.0, 4.0], [7.0, 5.0, 10.0]], np.float32)
    mean, std = standardization(X)
    np.testing.assert_allclose(mean, [4.0, 5.0, 4.0])
    np.testing.assert_allclose(std, [np.sqrt(5.0), 1.0, np.sqrt(14.0)], rtol=1e-6)  # ddof = 0; constant dim: 1
    assert mean.dtype == std.dtype == np.float32
    off_mean, off_std = standardization(X, enabled=False)
    assert (off_mean == 0).all() and (off_std == 1).all()


def test_standardized_head_applies_the_statistics_before_the_head():
    mean, std = torch.tensor([1.0, -2.0]), torch.tensor([2.0, 4.0])
    model = StandardizedHead(mean, std, torch.nn.Identity())
    x = torch.tensor([[3.0, 2.0]], dtype=torch.float64)  # any float dtype in
    torch.testing.assert_close(model(x), torch.tensor([[1.0, 1.0]]))


def test_validate_names_the_problem_and_returns_own_arrays():
    X = np.zeros((6, 3), np.float16)
    y = np.array([0, 1, 2, 0, -1, 1])
    views, labels, mask = validate("h", X, y, 3)
    assert views.shape == (1, 6, 3) and labels.dtype == np.int64 and mask is None
    assert views.dtype == np.float16                       # float16 embeddings are not copied to float32
    assert validate("h", X.astype(np.float64), y, 3)[0].dtype == np.float32
    labels[0] = 2
    assert y[0] == 0  # an own copy of the labels
    with pytest.raises(ValueError, match="h: sample 2 has label 3"):
        validate("h", X, np.array([0, 1, 3, 0, 0, 1]), 3)
    with pytest.raises(ValueError, match=r"\(N, d\) or \(V, N, d\)"):
        validate("h", X, y[:5], 3)
    bad = np.zeros((2, 6, 3), np.float32)
    bad[1, 4, 2] = np.inf  # a bad value in any view names the row
    with pytest.raises(ValueError, match="row 4"):
        validate("h", bad, y, 3)
    with pytest.raises(ValueError, match="at least 2 labelled"):
        validate("h", X, np.array([0, -1, -1, -1, -1, -1]), 3)
    with pytest.raises(ValueError, match="at least 2 classes"):
        validate("h", X, y, 1)
    assert validate("h", X, y, 3, meta_mask=[1, 0, 0, 0, 0, 0])[2].dtype == bool


def test_block_wise_statistics_and_standardisation_equal_the_whole_array_ones(monkeypatch):
    import curator.heads.inputs as inputs

    monkeypatch.setattr(inputs, "CHUNK", 7)                     # many blocks, the last one partial
    X = np.random.default_rng(0).normal(3, 2, size=(100, 5)).astype(np.float32)
    mean, std = inputs.standardization(X)
    np.testing.assert_allclose(mean, X.mean(0, dtype=np.float64), atol=1e-6)
    np.testing.assert_allclose(std, X.std(0, dtype=np.float64), rtol=1e-6)
    np.testing.assert_allclose(inputs.standardized(X[None], mean, std)[0], (X - mean) / std, atol=1e-6)
