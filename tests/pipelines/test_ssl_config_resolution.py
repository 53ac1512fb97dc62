"""An explicit SSL setting must win over the image-size default even when it equals the
dataclass default (regression: `--set ssl.epochs=200` on digits used to train 8 epochs)."""
from curator.data import DatasetOptions
from curator.data.registry import load_dataset
from curator.ssl.config import SSLConfig
from pipelines.ssl import resolve_config


def test_explicit_value_equal_to_dataclass_default_is_kept():
    ds = load_dataset(DatasetOptions(limit=64))
    assert SSLConfig().epochs == 200
    assert resolve_config(ds).epochs != 200               # digits' size recipe chooses fewer epochs
    assert resolve_config(ds, {"epochs": 200}).epochs == 200
    assert resolve_config(ds, overrides={"epochs": 200}).epochs == 200


def test_resolved_config_is_final():
    ds = load_dataset(DatasetOptions(limit=64))
    cfg = resolve_config(ds, {"epochs": 200, "batch_size": 32})
    again = resolve_config(ds, cfg)
    assert again is cfg and again.epochs == 200 and again.batch_size == 32
