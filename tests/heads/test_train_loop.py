"""The shared mini-batch trainer's batching (curator/heads/train_loop.py)."""
import numpy as np
import pytest

from curator.heads.config import HeadsConfig
from curator.heads.registry import train_head
from curator.heads.train_loop import batch_count, shuffled_batches


@pytest.mark.parametrize("n,b", [(10, 4), (9, 4), (8, 4), (1, 4), (4, 4), (5, 4), (257, 256), (3, 1)])
def test_shuffled_batches_cover_every_index_once_and_never_leave_one_alone(n, b):
    batches = shuffled_batches(np.random.default_rng(0), np.arange(100, 100 + n), b)
    assert len(batches) == batch_count(n, b)
    assert sorted(np.concatenate(batches).tolist()) == list(range(100, 100 + n))
    assert all(len(x) >= 2 for x in batches) or n == 1 or b == 1
    assert all(len(x) <= b + 1 for x in batches)


def test_a_lone_last_sample_joins_the_batch_before_it():
    """Regression: the merge used to overwrite the batch before that, so one batch was never trained and
    another twice (GDW and FSR, whenever N mod batch_size = 1)."""
    rng = np.random.default_rng(0)
    order = np.random.default_rng(0).permutation(9)
    batches = shuffled_batches(rng, 9, 4)
    assert [b.tolist() for b in batches] == [order[:4].tolist(), order[4:].tolist()]


def test_heads_train_when_the_last_batch_would_hold_one_sample():
    """Regression: 129 labelled samples in batches of 64 left a batch of one, which BatchNorm refused."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(129, 5)).astype(np.float32)
    r = train_head("ce", X, np.arange(129) % 3, 3, HeadsConfig(epochs=1, batch_size=64, hidden=8), seed=0)
    assert np.isfinite(r.probs).all()
