"""The heads stage (pipelines/heads.py): writes, skips and reloads; each head's fingerprint covers only
what changes that head, so changing one head's own setting retrains that head alone."""
import numpy as np
import pytest
from sklearn.datasets import load_digits

from curator.data.options import DatasetOptions
from curator.heads.config import HeadsConfig
from pipelines.heads import train_heads_stage
from pipelines.prepare import prepare_run


@pytest.fixture()
def digits_run(tmp_path):
    run, ds = prepare_run(tmp_path / "run", DatasetOptions(dataset="digits"))
    return run, ds, load_digits().data.astype(np.float32)  # the digits set's training rows, in order


def retrained(results) -> set[str]:
    """Heads trained by this call (a reloaded head has no model)."""
    return {h for h, r in results.items() if r.model is not None}


def test_train_heads_stage_writes_skips_and_reloads(digits_run):
    run, ds, X = digits_run
    cfg = HeadsConfig(heads=["lasl", "semi"], epochs=3, batch_size=128, hidden=64)
    first = train_heads_stage(run, ds, X, cfg, seed=0)
    assert set(first) == {"lasl", "semi"} and retrained(first) == {"lasl", "semi"}
    with np.load(run / "heads/lasl.npz") as z:
        assert z["probs"].shape == (len(X), 10) and "lasl_sigma" in z.files
    with np.load(run / "history/lasl.npz") as z:
        assert z["sigma"].shape == (3, len(X))
    again = train_heads_stage(run, ds, X, cfg, seed=0)  # unchanged inputs: skipped, reloaded from disk
    assert retrained(again) == set()
    np.testing.assert_array_equal(again["lasl"].signals["lasl_sigma"], first["lasl"].signals["lasl_sigma"])
    np.testing.assert_array_equal(again["semi"].signals["semi_pseudo_label"],
                                  first["semi"].signals["semi_pseudo_label"])
    changed = train_heads_stage(run, ds, X, cfg.replace(epochs=2), seed=0)  # a shared setting: both retrain
    assert retrained(changed) == {"lasl", "semi"} and changed["lasl"].history["loss"].shape[0] == 2
    # the teacher's own setting retrains the teacher and the student that learns from it
    assert retrained(train_heads_stage(run, ds, X, cfg.replace(epochs=2, sl_lambda=2.0), seed=0)) == {"lasl", "semi"}
    assert retrained(train_heads_stage(run, ds, X, cfg.replace(epochs=2, sl_lambda=2.0), seed=1)) == {"lasl", "semi"}


def test_changing_one_heads_own_setting_retrains_only_that_head(digits_run):
    run, ds, X = digits_run
    cfg = HeadsConfig(heads=["ce", "focal", "gdw"], epochs=2, batch_size=256, hidden=32,
                      gdw={"epochs": 3, "hidden": 32, "batch_size": 256})
    assert retrained(train_heads_stage(run, ds, X, cfg, seed=0)) == {"ce", "focal", "gdw"}
    focal = train_heads_stage(run, ds, X, cfg.replace(focal_gamma=2.0), seed=0)
    assert retrained(focal) == {"focal"}
    cfg = cfg.replace(focal_gamma=2.0, gdw={"epochs": 3, "hidden": 32, "batch_size": 256, "clip": 0.1})
    assert retrained(train_heads_stage(run, ds, X, cfg, seed=0)) == {"gdw"}
    # GDW reads no setting of the shared mini-batch trainer; the mini-batch heads read them all
    cfg = cfg.replace(lr=0.01)
    assert retrained(train_heads_stage(run, ds, X, cfg, seed=0)) == {"ce", "focal"}
    assert retrained(train_heads_stage(run, ds, X, cfg, seed=0)) == set()


def test_seed_is_required_and_unknown_heads_are_named_before_training(digits_run):
    run, ds, X = digits_run
    with pytest.raises(TypeError):
        train_heads_stage(run, ds, X, HeadsConfig(heads=["ce"]))  # the run's seed must be passed
    with pytest.raises(KeyError, match="unknown head 'nope'"):
        train_heads_stage(run, ds, X, HeadsConfig(heads=["ce", "nope"], epochs=1), seed=0)
    assert not run.exists("heads/ce.npz")
