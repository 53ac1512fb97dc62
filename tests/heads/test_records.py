"""Per-sample records and their summaries, shared by every head (curator/heads/records.py)."""
import numpy as np
import torch

from curator.heads.records import common_signals, label_margin, last_mean


def test_label_margin_by_hand():
    logits = torch.tensor([[1.0, 3.0, 2.0], [5.0, 1.0, 0.0]])
    np.testing.assert_allclose(label_margin(logits, torch.tensor([2, 0])).numpy(), [-1.0, 4.0])


def test_last_mean_averages_the_last_epochs_and_keeps_nan():
    rec = np.array([[9.0, 9.0], [1.0, np.nan], [2.0, np.nan], [3.0, np.nan]], np.float32)  # (E=4, N=2)
    np.testing.assert_allclose(last_mean(rec, 2), [2.5, np.nan])
    np.testing.assert_allclose(last_mean(rec, 10)[0], 15 / 4)  # more than E: all epochs
    np.testing.assert_allclose(last_mean(rec, 0)[0], 3.0)      # at least the last one
    assert last_mean(rec, 2).dtype == np.float32


def test_common_signals_of_a_head():
    probs = np.array([[0.7, 0.3], [0.2, 0.8], [0.6, 0.4]], np.float32)
    y = np.array([0, 0, -1])
    hist = {"margin": np.array([[1.0, -1.0, np.nan], [3.0, -3.0, np.nan]], np.float32),
            "loss": np.array([[0.1, 2.0, np.nan], [0.3, 4.0, np.nan]], np.float32)}
    s = common_signals("h", probs, y, hist, last_epochs=2)
    assert set(s) == {"h_prob_label", "h_pred", "h_margin", "h_loss"}
    np.testing.assert_allclose(s["h_prob_label"], [0.7, 0.2, np.nan])
    assert s["h_pred"].tolist() == [0, 1, 0]
    np.testing.assert_allclose(s["h_margin"], [2.0, -2.0, np.nan])
    np.testing.assert_allclose(s["h_loss"], [0.2, 3.0, np.nan])
