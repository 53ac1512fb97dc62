"""The head registry: one table in step with the column contract; each head reads exactly the settings it
declares (its stage fingerprint); the seed decides every draw; the device path gives the CPU's numbers."""
import dataclasses

import numpy as np
import pytest
import torch

from curator import columns
from curator.device import select_device, torch_threads
from curator.heads.config import DEFAULT_HEADS, HeadsConfig
from curator.heads.predict import predict_probs
from curator.heads.registry import HEADS, head_settings, teacher_of, train_head

FIELDS = {f.name for f in dataclasses.fields(HeadsConfig)}
COMMON = ("prob_label", "pred", "margin", "loss")
READS: set[str] = set()


class RecordingConfig(HeadsConfig):
    """A HeadsConfig that notes every field read (into READS)."""

    def __getattribute__(self, key):
        if key in FIELDS:
            READS.add(key)
        return super().__getattribute__(key)


def tiny_config(cls=HeadsConfig) -> HeadsConfig:
    small = {"epochs": 3, "hidden": 16, "batch_size": 64}
    return cls(epochs=2, batch_size=64, hidden=16, gdw=small, fsr=small)


def blobs(n=240, d=8, c=4, noise=0.15, seed=0):
    """Gaussian class blobs with some flipped labels: X (n, d) float32 (not standardised), y (n,)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) % c
    X = (rng.normal(size=(n, d)) + 3 * np.eye(c, d)[t] + 5).astype(np.float32)
    y = t.copy()
    flip = rng.random(n) < noise
    y[flip] = (t[flip] + 1) % c
    return X, y


@pytest.fixture(scope="module")
def trained():
    """Every head trained once (seed 0, default device) with the config that records its reads."""
    X, y = blobs()
    out = {}
    with torch_threads(1):  # as every test here (conftest): the thread count changes float sums
        for name in sorted(HEADS, key=lambda h: HEADS[h].teacher is not None):  # semi after its teacher
            cfg = tiny_config(RecordingConfig)
            READS.clear()
            r = train_head(name, X, y, 4, cfg, seed=0, results=out)
            out[name] = r
            r.reads = set(READS)
    return out


def test_the_head_table_declares_every_heads_columns():
    for name, spec in HEADS.items():
        assert spec.name == name and spec.description and "\n" not in spec.description and spec.words
        assert not columns.undeclared([f"{name}_{s}" for s in COMMON] + [c[0] for c in spec.columns], "signals")


def test_each_head_writes_its_declared_columns(trained):
    for name, r in trained.items():
        own = {c[0] for c in HEADS[name].columns}
        assert columns.undeclared(r.signals, "signals") == [], name
        assert own <= set(r.signals), name
        if name != "semi":  # the self-trained student reports pseudo-labels, not the given-label columns
            assert {f"{name}_{s}" for s in COMMON} <= set(r.signals), name
        assert all(np.shape(v) == (len(r.probs),) for v in r.signals.values()), name


def test_each_head_reads_exactly_the_settings_it_declares(trained):
    for name, r in trained.items():
        assert r.reads == set(HEADS[name].settings), (name, r.reads ^ set(HEADS[name].settings))
    declared = set().union(*(spec.settings for spec in HEADS.values()))
    assert declared == FIELDS - {"heads"}  # every setting changes some head


def test_head_settings_change_only_with_the_heads_own_settings():
    base, focal, gdw = HeadsConfig(), HeadsConfig(focal_gamma=2.0), HeadsConfig(gdw={"clip": 0.1})
    changed = {h: (head_settings(h, base) != head_settings(h, focal), head_settings(h, base) != head_settings(h, gdw))
               for h in HEADS}
    assert {h for h, (f, _) in changed.items() if f} == {"focal"}
    assert {h for h, (_, g) in changed.items() if g} == {"gdw"}
    assert head_settings("gdw", gdw)["gdw"]["clip"] == 0.1  # plain values (written to the stage record)
    assert head_settings("ce", HeadsConfig(epochs=3))["epochs"] == 3
    assert teacher_of("semi", HeadsConfig(semi_teacher="ce")) == "ce" and teacher_of("ce", base) is None


def test_the_seed_decides_every_draw(trained):
    X, y = blobs()
    cfg = tiny_config()
    for name, r in trained.items():
        torch.manual_seed(1234)  # global generators in another state: no effect
        np.random.seed(1234)
        again = train_head(name, X, y, 4, cfg, seed=0, results=trained)
        np.testing.assert_array_equal(again.probs, r.probs, err_msg=name)
        other = train_head(name, X, y, 4, cfg, seed=1, results=trained)
        assert not np.array_equal(other.probs, r.probs), name


def test_default_device_gives_the_probabilities_of_the_forced_cpu(trained):
    X, y = blobs()
    default = select_device()
    for name in DEFAULT_HEADS:
        cpu = train_head(name, X, y, 4, tiny_config(), seed=0, device="cpu", results=trained)
        auto = trained[name]  # the default selection (CUDA when present)
        if default.type == "cpu":
            np.testing.assert_array_equal(auto.probs, cpu.probs, err_msg=name)
        else:  # GPU kernels round differently: the same training within float tolerance
            np.testing.assert_allclose(auto.probs, cpu.probs, atol=2e-2, err_msg=name)
        # the returned model is on the CPU, standardises raw embeddings and reproduces the probabilities
        assert next(auto.model.parameters()).device.type == "cpu"
        np.testing.assert_allclose(predict_probs(auto.model, X, device="cpu"), auto.probs, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("name", [h for h, spec in HEADS.items() if spec.labelled_only])
def test_labelled_only_heads_predict_unlabeled_rows_and_leave_their_signals_empty(name):
    X, y = blobs(seed=1)
    y = y.copy()
    y[:30] = -1
    r = train_head(name, X, y, 4, tiny_config(), seed=0)
    assert r.probs.shape == (len(y), 4) and np.isfinite(r.probs).all()
    np.testing.assert_allclose(predict_probs(r.model, X, device="cpu"), r.probs, atol=1e-5)
    for key, v in r.signals.items():
        rest = v[:30]
        assert (np.isnan(rest).all() if v.dtype.kind == "f" else (rest == -1).all() if v.dtype.kind == "i"
                else (~rest).all()), key
        assert np.isfinite(v[30:].astype(float)).all(), key
    assert all(h.shape[1] == len(y) and np.isnan(h[:, :30]).all() for k, h in r.history.items()
               if h.dtype.kind == "f")


def test_meta_mask_is_checked_once_for_every_head():
    X, y = blobs()
    with pytest.raises(ValueError, match="meta_mask must be"):
        train_head("ce", X, y, 4, tiny_config(), seed=0, meta_mask=np.ones(5, bool))
    y2 = y.copy()
    y2[:10] = -1
    only_unlabeled = np.zeros(len(y), bool)
    only_unlabeled[:10] = True
    with pytest.raises(ValueError, match="selects no labelled sample"):
        train_head("gdw", X, y2, 4, tiny_config(), seed=0, meta_mask=only_unlabeled)


def test_trusted_rows_are_gdws_meta_set_and_change_only_meta_set_heads():
    X, y = blobs()
    trusted = np.zeros(len(y), bool)
    trusted[::5] = True
    cfg = tiny_config()
    for name in ("gdw", "fsr", "ce"):
        plain = train_head(name, X, y, 4, cfg, seed=0)
        meta = train_head(name, X, y, 4, cfg, seed=0, meta_mask=trusted)
        assert np.array_equal(plain.probs, meta.probs) == (not HEADS[name].meta_set), name
    gdw = train_head("gdw", X, y, 4, cfg, seed=0, meta_mask=trusted)
    assert "dictionary" not in gdw.extras and "meta_margin" not in gdw.history  # the trusted rows are the meta set
    fsr = train_head("fsr", X, y, 4, cfg, seed=0, meta_mask=trusted)
    assert trusted[fsr.extras["dictionary"]].all()  # FSR's dictionary is drawn from the trusted rows
