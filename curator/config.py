"""Typed configs: dataclasses filled from recipe TOML sections, validated at load."""
from __future__ import annotations

import dataclasses
import math
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A recipe or override names an unknown key or has a value of the wrong type."""


def from_dict(cls: type[T], values: dict[str, Any] | None, *, where: str = "") -> T:
    """Build dataclass `cls` from `values`, naming any unknown key or badly typed value.

    Every value is checked against its field's annotation (`check_type`) before the dataclass is built,
    so ``--set heads.epochs=abc`` is a one-line `ConfigError` at parse time, not a failure in a stage.
    """
    values = dict(values or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"{where or cls.__name__}: unknown key(s) {unknown}; known: {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    kwargs = {name: check_type(value, hints.get(name, Any), f"{(where or cls.__name__).strip('[]')}.{name}")
              for name, value in values.items()}
    return cls(**kwargs)


_KIND = {int: "an integer", float: "a number", str: "a string", bool: "true/false", list: "a list",
         dict: "a table"}


def check_type(value: Any, kind: Any, where: str) -> Any:
    """`value` as a value of annotation `kind` (int, float, bool, str, X | None, list[X], dict, a dataclass);
    `ConfigError` naming `where` otherwise. An int is accepted where a float belongs (and becomes one); a
    float that is not finite (nan, inf) is refused everywhere."""
    if kind is Any:
        return value
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        errors = []
        for a in options:
            try:
                return check_type(value, a, where)
            except ConfigError as exc:
                errors.append(exc)
        raise errors[0] if len(options) == 1 else ConfigError(
            f"{where}: expected {' or '.join(_KIND.get(typing.get_origin(a) or a, str(a)) for a in options)}"
            f"{' or nothing' if type(None) in args else ''}, got {value!r}")
    if dataclasses.is_dataclass(kind):
        if isinstance(value, kind):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table of settings, got {value!r}")
        return value   # the dataclass builds (and checks) it in __post_init__
    if origin is list or kind is list:
        if isinstance(value, str) and args == (str,):
            return value   # "a,b" lists: split by the dataclass
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [check_type(v, args[0], f"{where}[{i}]") for i, v in enumerate(value)] if args else value
    if origin is dict or kind is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {value!r}")
        return value
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{where}: expected a finite number, got {value!r}")
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        if "\x00" in value:
            raise ConfigError(f"{where}: a NUL character is not allowed, got {value!r}")
        return value
    return value


def check_range(where: str, value: float, low: float, high: float) -> None:
    """`ConfigError` unless ``low <= value <= high`` (counts and durations a recipe may ask for are bounded)."""
    if not low <= value <= high:
        raise ConfigError(f"{where} must be in {low}..{high}, got {value}")


def load_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"recipe file {str(path)!r} does not exist")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"recipe file {str(path)!r}: {exc}") from None
