"""Recipes: per-dataset defaults in ``pipelines/recipes/<dataset>.toml`` loaded into typed configs.

A recipe has sections ``[dataset]`` (DatasetOptions fields), ``[ssl]``, ``[heads]``, ``[signals]`` and
``[audit]`` (each the fields of that stage's config dataclass). Command-line overrides
``--set section.key=value`` (value parsed as TOML, else taken as a string) are applied on top, and every
key is validated by `curator.config.from_dict`, which names an unknown key.
"""
from __future__ import annotations

import importlib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curator.config import ConfigError, from_dict, load_toml

RECIPES_DIR = Path(__file__).parent / "recipes"
SECTIONS = ("dataset", "ssl", "heads", "signals", "audit")
# section -> (module, class) of its typed config; a stage not written yet keeps a plain dict
CONFIG_CLASSES = {"ssl": ("curator.ssl.config", "SSLConfig"), "heads": ("curator.heads.config", "HeadsConfig"),
                  "signals": ("curator.signals.config", "SignalsConfig"), "audit": ("curator.audit.config", "AuditConfig")}


@dataclass
class Recipe:
    dataset: dict[str, Any] = field(default_factory=dict)
    ssl: Any = None
    heads: Any = None
    signals: Any = None
    audit: Any = None
    raw: dict[str, Any] = field(default_factory=dict)   # the merged TOML (recorded in config.json)
    path: str | None = None


def recipe_path(dataset: str) -> Path | None:
    p = RECIPES_DIR / f"{dataset}.toml"
    return p if p.exists() else None


def parse_override(text: str) -> tuple[str, str, Any]:
    """'heads.epochs=5' -> ('heads', 'epochs', 5)."""
    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise ConfigError(f"override {text!r} must look like section.key=value (e.g. heads.epochs=5)")
    key, value = text.split("=", 1)
    section, name = key.strip().split(".", 1)
    if section not in SECTIONS:
        raise ConfigError(f"override {text!r}: unknown section {section!r}; known: {list(SECTIONS)}")
    try:
        parsed = tomllib.loads(f"v = {value.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value.strip()
    return section, name.strip(), parsed


def config_class(section: str):
    mod, cls = CONFIG_CLASSES[section]
    return getattr(importlib.import_module(mod), cls)


def load_recipe(dataset: str = "digits", path: str | Path | None = None, overrides: list[str] | None = None,
                raw: dict | None = None) -> Recipe:
    """The recipe for `dataset` (or the file `path`, or the dict `raw`) with `overrides` applied."""
    if raw is None:
        p = Path(path) if path else recipe_path(dataset)
        raw = load_toml(p) if p else {}
    else:
        p = None
    raw = {k: dict(v) for k, v in raw.items()}
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"recipe {str(p) if p else ''}: unknown section(s) {unknown}; known: {list(SECTIONS)}")
    for text in overrides or []:
        section, name, value = parse_override(text)
        raw.setdefault(section, {})[name] = value
    rec = Recipe(dataset=raw.get("dataset", {}), raw=raw, path=str(p) if p else None)
    for section in CONFIG_CLASSES:
        cls = config_class(section)
        values = raw.get(section, {})
        setattr(rec, section, from_dict(cls, values, where=f"[{section}]"))
    return rec
