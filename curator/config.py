"""Typed configs: dataclasses filled from recipe TOML sections, validated at load."""
from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A recipe or override names an unknown key or has a value of the wrong type."""


def from_dict(cls: type[T], values: dict[str, Any] | None, *, where: str = "") -> T:
    """Build dataclass `cls` from `values`, naming any unknown key or badly typed value."""
    values = dict(values or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"{where or cls.__name__}: unknown key(s) {unknown}; known: {sorted(fields)}")
    kwargs = {}
    for name, value in values.items():
        default = getattr(cls, name, None) if not isinstance(fields[name].default, dataclasses._MISSING_TYPE) else None
        if default is not None and not isinstance(default, bool) and isinstance(default, (int, float)) and isinstance(value, (int, float)) and not isinstance(value, bool):
            value = type(default)(value) if isinstance(default, float) else value
        elif default is not None and isinstance(default, bool) and not isinstance(value, bool):
            raise ConfigError(f"{where or cls.__name__}.{name}: expected true/false, got {value!r}")
        kwargs[name] = value
    return cls(**kwargs)


def load_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"recipe file {str(path)!r} does not exist")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"recipe file {str(path)!r}: {exc}") from None
