"""Checkpoints in a (possibly shared) run directory never run code: they hold only tensors, numbers,
strings, lists and dicts and are loaded with ``torch.load(weights_only=True)``."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ssl"))
from ssl_tiny import tiny_cfg, tiny_data  # noqa: E402

from curator.data.problems import DataError  # noqa: E402
from curator.ssl.embed import load_backbone  # noqa: E402
from curator.ssl.train import pretrain  # noqa: E402

from integrity_inputs import Evil  # noqa: E402


def test_a_training_checkpoint_loads_with_weights_only(tmp_path):
    torch.set_num_threads(1)
    pretrain(tiny_data(64), tiny_cfg(epochs=1), tmp_path, torch.device("cpu"), seed=0)
    ck = torch.load(tmp_path / "last.pt", weights_only=True)  # raises if anything but plain data is inside
    assert ck["epoch"] == 1 and isinstance(ck["rng"]["numpy"]["key"], torch.Tensor)


def test_a_crafted_training_checkpoint_runs_nothing_and_training_starts_afresh(tmp_path, caplog):
    torch.set_num_threads(1)
    marker = tmp_path / "pwned"
    torch.save({"model": Evil(marker), "optimizer": {}, "epoch": 1, "history": [], "rng": {}}, tmp_path / "last.pt")
    with caplog.at_level(logging.WARNING):
        res = pretrain(tiny_data(64), tiny_cfg(epochs=1), tmp_path, torch.device("cpu"), seed=0)
    assert not marker.exists()
    assert res.resumed_from == 0 and res.epochs_done == 1
    assert any("cannot be loaded safely" in r.getMessage() for r in caplog.records)


def test_a_damaged_training_checkpoint_starts_afresh(tmp_path):
    torch.set_num_threads(1)
    (tmp_path / "last.pt").write_bytes(b"PK\x03\x04 not really a zip")
    res = pretrain(tiny_data(64), tiny_cfg(epochs=1), tmp_path, torch.device("cpu"), seed=0)
    assert res.resumed_from == 0 and res.epochs_done == 1


def test_a_crafted_encoder_checkpoint_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"backbone_state": Evil(marker)}, tmp_path / "backbone.pt")
    with pytest.raises(DataError, match=r"backbone\.pt.*cannot be loaded safely"):
        load_backbone(tmp_path / "backbone.pt", torch.device("cpu"))
    assert not marker.exists()
