"""The recipe's SSLConfig is typed; its None fields are decided from the data (curator.ssl.resolve.resolve_config).

An explicit SSL setting must win over the image-size default even when it equals the dataclass default
(regression: `--set ssl.epochs=200` on digits used to train 8 epochs)."""
import dataclasses

import pytest
import torch

from curator.config import ConfigError
from curator.data import DatasetOptions
from curator.data.registry import load_dataset
from curator.ssl.config import SSLConfig
from pipelines.recipes import load_recipe
from curator.ssl.resolve import resolve_config

CPU = torch.device("cpu")


def test_explicit_value_is_kept_and_none_means_decide():
    ds = load_dataset(DatasetOptions(limit=64))
    assert SSLConfig().epochs is None and SSLConfig().backbone is None
    auto = resolve_config(ds, None, CPU)
    assert auto.epochs == 8 and auto.backbone == "tiny_cnn" and auto.is_resolved
    assert resolve_config(ds, {"epochs": 200}, CPU).epochs == 200
    assert resolve_config(ds, SSLConfig(epochs=200), CPU).epochs == 200


def test_resolution_is_idempotent_and_typed():
    ds = load_dataset(DatasetOptions(limit=64))
    cfg = resolve_config(ds, {"epochs": 200, "batch_size": 32}, CPU)
    assert resolve_config(ds, cfg, CPU) == cfg and cfg.batch_size == 32
    assert not hasattr(cfg, "_resolved")
    assert [f.name for f in dataclasses.fields(SSLConfig) if f.name in ("seed", "embed_views")] == []


def test_recipe_ssl_section_is_an_sslconfig_and_seed_comes_from_the_run():
    rec = load_recipe("digits", overrides=["ssl.epochs=3"])
    assert isinstance(rec.ssl, SSLConfig) and rec.ssl.epochs == 3
    assert rec.record()["ssl"]["epochs"] == 3
    with pytest.raises(ConfigError, match="run's seed"):
        load_recipe("digits", overrides=["ssl.seed=4"])
    with pytest.raises(ConfigError, match="embed_views"):
        load_recipe("digits", overrides=["ssl.embed_views=2"])
    with pytest.raises(ConfigError, match="expected an integer"):
        load_recipe("digits", overrides=["ssl.epochs='many'"])
    with pytest.raises(ConfigError, match="needs --weights"):
        load_recipe("digits", overrides=["ssl.epochs=0"])
