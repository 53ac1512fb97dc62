"""Recipes: per-dataset defaults in ``pipelines/recipes/<dataset>.toml``, loaded into typed configs.

A recipe has sections ``[dataset]`` (DatasetOptions fields), ``[ssl]``, ``[heads]``, ``[evidence]``,
``[hygiene]``, ``[signals]`` and ``[audit]`` (each the fields of that stage's config dataclass). Command-line overrides
``--set section.key=value`` (value parsed as TOML, else taken as a string) are applied on top, and every
key is validated by `curator.config.from_dict`, which names an unknown key. A budget or weights given as an
override (``--budget`` / ``--weights``) replace the recipe file's ``[ssl] epochs`` unless epochs are given too
(with weights and no epochs or budget, the encoder embeds with the weights as they are). `resolve_recipe` is the one
way every command (`audit`, `pretrain`, `embed`, `train`, `signals`, `inspect`) turns a dataset name, an
optional recipe file, overrides and the options given on the command line into the run's settings.
"""
from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curator.audit.config import AuditConfig
from curator.config import ConfigError, from_dict, load_toml
from curator.data.options import DatasetOptions
from curator.evidence.config import EvidenceConfig
from curator.heads.config import HeadsConfig
from curator.hygiene.config import HygieneConfig
from curator.signals.config import SignalsConfig
from curator.ssl.config import SSLConfig

RECIPES_DIR = Path(__file__).parent / "recipes"
SECTIONS = ("dataset", "ssl", "heads", "evidence", "hygiene", "signals", "audit")


@dataclass
class Recipe:
    dataset: dict[str, Any] = field(default_factory=dict)   # the recipe's [dataset] values (merged with the CLI's)
    ssl: SSLConfig = field(default_factory=SSLConfig)       # None fields: decided from the data (pipelines.ssl)
    heads: HeadsConfig = field(default_factory=HeadsConfig)
    evidence: EvidenceConfig = field(default_factory=EvidenceConfig)
    hygiene: HygieneConfig = field(default_factory=HygieneConfig)
    signals: SignalsConfig = field(default_factory=SignalsConfig)
    audit: AuditConfig = field(default_factory=AuditConfig)
    path: str | None = None
    overrides: list[str] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        """What RUN/config.json keeps of the recipe: every section as resolved, the file and the overrides."""
        out: dict[str, Any] = {"dataset": dict(self.dataset)}
        for section in ("ssl", "heads", "evidence", "hygiene", "signals", "audit"):
            out[section] = dataclasses.asdict(getattr(self, section))
        return out | {"path": self.path, "overrides": list(self.overrides)}


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
    given = set()
    for text in overrides or []:
        section, name, value = parse_override(text)
        raw.setdefault(section, {})[name] = value
        given.add((section, name))
    if given & {("ssl", "budget_minutes"), ("ssl", "weights")} and ("ssl", "epochs") not in given:
        raw["ssl"].pop("epochs", None)   # a budget or weights given for this run decide what a recipe's epochs fixed
    from_dict(DatasetOptions, raw.get("dataset"), where="[dataset]")       # validate the keys now
    return check_names(Recipe(dataset=raw.get("dataset", {}), ssl=SSLConfig.from_dict(raw.get("ssl"), where="[ssl]"),
                  heads=from_dict(HeadsConfig, raw.get("heads"), where="[heads]"),
                  evidence=from_dict(EvidenceConfig, raw.get("evidence"), where="[evidence]"),
                  hygiene=from_dict(HygieneConfig, raw.get("hygiene"), where="[hygiene]"),
                  signals=from_dict(SignalsConfig, raw.get("signals"), where="[signals]"),
                  audit=from_dict(AuditConfig, raw.get("audit"), where="[audit]"),
                  path=str(p) if p else None, overrides=list(overrides or [])))


def check_names(rec: Recipe) -> Recipe:
    """Refuse (`ConfigError`) a head name the registry does not know before any stage starts; SSL methods and
    backbones are checked by `SSLConfig.validate`, every value's type by `curator.config.from_dict`."""
    from curator.heads.registry import HEADS

    for name in [*rec.heads.heads, rec.heads.semi_teacher]:
        if name not in HEADS:
            raise ConfigError(f"heads: unknown head {name!r}; known: {', '.join(HEADS)}")
    return rec


def resolve_options(options: DatasetOptions | dict | None, recipe: Recipe) -> DatasetOptions:
    """Recipe [dataset] values, then the user's options on top: a dict holds exactly the options given
    explicitly (the CLI passes these); from a DatasetOptions every non-default value counts as given."""
    base = from_dict(DatasetOptions, recipe.dataset, where="[dataset]")
    if options is None:
        return base
    if isinstance(options, dict):
        return from_dict(DatasetOptions, {**dataclasses.asdict(base), **options}, where="dataset options")
    default = DatasetOptions()
    for f in dataclasses.fields(DatasetOptions):
        v = getattr(options, f.name)
        if v != getattr(default, f.name):
            setattr(base, f.name, v)
    return base


def resolve_recipe(options: DatasetOptions | dict | None, *, recipe: str | Path | dict | Recipe | None = None,
                   overrides: list[str] | None = None) -> tuple[DatasetOptions, Recipe]:
    """(dataset options, recipe) for a command: the dataset named by `options` (default digits) picks the
    recipe file unless `recipe` names one (a path, or the recipe's sections as a dict); `overrides` apply on
    top; the options given override [dataset]."""
    if isinstance(recipe, Recipe):
        rec = recipe
    else:
        name = (options.get("dataset") if isinstance(options, dict) else getattr(options, "dataset", None)) if options else None
        if isinstance(recipe, dict):
            rec = load_recipe(name or "digits", raw=recipe, overrides=overrides)
        else:
            rec = load_recipe(name or "digits", path=recipe, overrides=overrides)
    return resolve_options(options, rec), rec
