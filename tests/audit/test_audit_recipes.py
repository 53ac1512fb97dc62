"""Recipes load into typed configs; overrides apply and bad keys are named."""
import pytest

from curator.audit.config import AuditConfig
from curator.config import ConfigError
from pipelines.recipes import RECIPES_DIR, load_recipe, parse_override


def test_every_recipe_loads():
    names = sorted(p.stem for p in RECIPES_DIR.glob("*.toml"))
    assert {"digits", "cifar10", "cifar10n", "cifar100", "cifar100n", "clothing1m", "imagefolder", "csv"} <= set(names)
    for n in names:
        r = load_recipe(n)
        assert isinstance(r.audit, AuditConfig)


def test_overrides_and_errors():
    r = load_recipe("digits", overrides=["audit.rounds=0", "audit.threshold=0.7", "dataset.noise_rate=0.1"])
    assert r.audit.rounds == 0 and r.audit.threshold == 0.7 and r.dataset["noise_rate"] == 0.1
    assert parse_override("heads.heads=['lasl']") == ("heads", "heads", ["lasl"])
    r = load_recipe("digits", overrides=["evidence.k=7"])
    assert r.evidence.k == 7
    with pytest.raises(ConfigError, match="bogus"):
        load_recipe("digits", overrides=["audit.bogus=1"])
    with pytest.raises(ConfigError, match="section"):
        parse_override("nosuch.key=1")
    with pytest.raises(ConfigError, match="section.key=value"):
        parse_override("rounds=1")


def test_explicit_options_override_recipe():
    from curator.data.options import DatasetOptions
    from pipelines.recipes import resolve_options

    r = load_recipe("digits")
    o = resolve_options({"dataset": "digits", "noise": "none"}, r)   # explicit default value still wins
    assert o.noise == "none" and o.imbalance == "exp" and o.gamma == 10.0
    o = resolve_options(DatasetOptions(limit=5), r)
    assert o.limit == 5 and o.noise == "uniform"
