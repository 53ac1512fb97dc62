"""CBS+RRS (paper 002): the class-balanced sampler and the split of the losses."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from curator.heads.cbs import CBSHead, CBSRRS, batch_shape, class_balanced_batches
from curator.heads.config import HeadsConfig


def long_tailed_labels():
    return np.repeat(np.arange(7), [300, 120, 60, 25, 9, 3, 1])


@pytest.mark.parametrize("k,z", [(3, 4), (7, 2), (5, 10)])
def test_sampler_yields_k_classes_times_z_and_visits_every_class(k, z):
    y = long_tailed_labels()
    rng = np.random.default_rng(1)
    n_batches = 40
    seen = []
    for b in class_balanced_batches(y, k, z, n_batches, rng):
        assert b.shape == (k * z,)
        classes, counts = np.unique(y[b], return_counts=True)
        assert len(classes) == k and (counts == z).all()
        seen.append(set(classes))
    # every class appears within each cycle of about C / k batches
    window = int(np.ceil(7 / k)) + 1
    for s in range(0, n_batches - window + 1):
        assert set().union(*seen[s:s + window]) == set(range(7))


def test_sampler_ignores_unlabeled_and_uses_replacement_for_tiny_classes():
    y = np.array([-1, -1, 0, 0, 0, 1, 2, 2])
    for b in class_balanced_batches(y, 3, 4, 5, np.random.default_rng(0)):
        assert (y[b] >= 0).all() and len(b) == 12


def test_batch_shape_defaults():
    assert batch_shape(10, HeadsConfig(batch_size=256)) == (10, 25)
    assert batch_shape(1000, HeadsConfig(batch_size=256, cbs_per_class=4)) == (256, 4)
    assert batch_shape(10, HeadsConfig(batch_size=256, cbs_classes_per_batch=4, cbs_per_class=4)) == (4, 4)


def test_primary_classifier_only_learns_from_cbs_batches():
    torch.manual_seed(0)
    model = CBSHead(8, 3, hidden=16, n_layers=2)
    X = torch.randn(40, 8)
    y = torch.randint(0, 3, (40,))
    obj = CBSRRS(k=3, z=2, w_cbs=0.0, w_rrs=1.0)  # RRS loss only
    obj.setup(model, X, y, 3, 1)
    loss = obj.batch_loss(model, lambda idx: X[torch.as_tensor(idx)], y, (np.arange(6), np.arange(6, 20)))
    loss.backward()
    assert model.classifier.weight.grad is None or model.classifier.weight.grad.abs().sum() == 0
    assert model.aux_classifier.weight.grad.abs().sum() > 0
    assert model.features[0].weight.grad.abs().sum() > 0  # the shared trunk learns from RRS


def test_loss_weights_combine_as_in_the_paper():
    torch.manual_seed(0)
    model = CBSHead(8, 3, hidden=16, n_layers=2).eval()  # eval: BatchNorm does not mix the batches
    X = torch.randn(20, 8)
    y = torch.randint(0, 3, (20,))
    cbs, rrs = np.arange(6), np.arange(6, 20)
    obj = CBSRRS(3, 2, 0.5, 1.0)
    obj.setup(model, X, y, 3, 1)
    got = obj.batch_loss(model, lambda idx: X[torch.as_tensor(idx)], y, (cbs, rrs))
    f = model.features(X)
    want = 0.5 * F.cross_entropy(model.classifier(f[cbs]), y[cbs]) + F.cross_entropy(model.aux_classifier(f[rrs]), y[rrs])
    torch.testing.assert_close(got, want)
