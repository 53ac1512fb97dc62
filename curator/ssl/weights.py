"""Weights the user already has, from a local file only (SPEC §4, "a local pretrained start").

`read_weights(path)` opens a file safely — ``torch.load(weights_only=True)`` (or safetensors for a
``.safetensors`` file) — and finds the state dict in it: a plain state dict, one wrapped under a usual key
(``state_dict``, ``model``, ``teacher``, ...), or a curator encoder checkpoint (``RUN/checkpoints/backbone.pt``,
or the run directory itself). `load_weights(model, path, name)` loads it into `model` with strict key
checking: the file's keys may carry a ``module.`` / ``backbone.`` / ``encoder.`` / ``model.`` prefix (the
one that matches the model best is taken), the classifier's keys are optional (it is removed afterwards),
and anything else missing, unexpected or of the wrong shape is a `WeightsError` naming the file and the
keys. For timm models whose original checkpoints use other key names, timm's own
``checkpoint_filter_fn`` of the model's module is tried before giving up.

Every failure is one `WeightsError` line (a `ConfigError`: the command exits with code 2): a missing file,
a file `torch.load(weights_only=True)` refuses (e.g. a pickle holding arbitrary objects), a file that holds
no state dict, and an architecture/weights mismatch.
"""
from __future__ import annotations

import logging
import pickle
import re
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

from curator.config import ConfigError

LOG = logging.getLogger(__name__)

WRAPPER_KEYS = ("state_dict", "model", "model_state", "model_state_dict", "teacher", "student", "network", "net",
                "module", "backbone_state")
PREFIXES = ("module.", "backbone.", "encoder.", "model.", "module.backbone.", "module.encoder.")
SHOW = 6   # keys named per kind in a message


class WeightsError(ConfigError):
    """The weights file cannot be used; the message names the file and why (exit code 2)."""


def checkpoint_path(path: str | Path) -> Path:
    """`path`, or RUN/checkpoints/backbone.pt when `path` is a curator run directory."""
    p = Path(path).expanduser()
    if p.is_dir() and (p / "checkpoints" / "backbone.pt").exists():
        return p / "checkpoints" / "backbone.pt"
    return p


def _first_line(exc: BaseException) -> str:
    """The informative line of an error message (torch's unpickler names the refused global further down)."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", ln).strip() for ln in str(exc).splitlines()]
    lines = [ln for ln in lines if ln] or [type(exc).__name__]
    for ln in lines:
        m = re.search(r"Unsupported global: GLOBAL (\S+)", ln)
        if m:
            return f"it would import {m.group(1)}"
    return lines[0][:200]


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(isinstance(k, str) for k in obj) \
        and all(isinstance(v, torch.Tensor) for v in obj.values())


def check_tensors(state: dict[str, torch.Tensor], where: str) -> dict[str, torch.Tensor]:
    """`state` if every tensor is a dense (strided) tensor with data, of a real dtype, with finite values;
    `WeightsError` naming the first that is sparse, on the meta device, complex or holds NaN / inf (which would
    otherwise reach the embeddings and fail later, or be cast silently)."""
    for name, t in state.items():
        if t.layout != torch.strided or t.is_meta:
            raise WeightsError(f"{where}: tensor {name!r} is {'on the meta device' if t.is_meta else str(t.layout)}, "
                               "not a dense tensor with values")
        if t.is_complex():
            raise WeightsError(f"{where}: tensor {name!r} is complex ({t.dtype}); weights are real numbers")
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise WeightsError(f"{where}: tensor {name!r} holds NaN or infinite values")
    return state


def read_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any] | None]:
    """(state dict, curator metadata or None) from a local file; `WeightsError` if it cannot be used (also
    `check_tensors`)."""
    state, meta = _read_weights(path)
    return check_tensors(state, f"weights file {str(checkpoint_path(path))!r}"), meta


def _read_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any] | None]:
    p = checkpoint_path(path)
    if not p.exists():
        raise WeightsError(f"weights file {str(p)!r} does not exist")
    if p.is_dir():
        raise WeightsError(f"weights {str(p)!r} is a folder, not a file (a curator run directory holds "
                           "checkpoints/backbone.pt)")
    if p.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError:
            raise WeightsError(f"weights file {str(p)!r} is a .safetensors file; install safetensors "
                               "(pip install 'curator[timm]')") from None
        try:
            return load_file(str(p), device="cpu"), None
        except Exception as exc:  # noqa: BLE001 - the library raises its own error types
            raise WeightsError(f"weights file {str(p)!r} is not a readable safetensors file ({_first_line(exc)})") from None
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise WeightsError(f"weights file {str(p)!r} is refused by torch.load(weights_only=True): it holds more than "
                           f"tensors ({_first_line(exc)}); save only the state dict: "
                           "torch.save(model.state_dict(), FILE)") from None
    except (RuntimeError, OSError, EOFError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise WeightsError(f"weights file {str(p)!r} is not a PyTorch checkpoint torch.load can read "
                           f"({_first_line(exc)})") from None
    if isinstance(obj, dict) and {"model", "optimizer", "epoch"} <= set(obj) and "fingerprint" in obj:
        raise WeightsError(f"weights file {str(p)!r} is a curator training checkpoint (last.pt); pass the encoder "
                           "RUN/checkpoints/backbone.pt (or the run directory)")
    if isinstance(obj, dict) and "backbone_state" in obj and "backbone" in obj:
        meta = {k: v for k, v in obj.items() if k != "backbone_state"}
        return dict(obj["backbone_state"]), meta
    if _is_state_dict(obj):
        return dict(obj), None
    if isinstance(obj, dict):
        for key in WRAPPER_KEYS:
            if _is_state_dict(obj.get(key)):
                LOG.info("weights %s: using the state dict under %r", p, key)
                return dict(obj[key]), None
    kind = type(obj).__name__
    hint = f" with keys {sorted(map(str, obj))[:SHOW]}" if isinstance(obj, dict) else ""
    raise WeightsError(f"weights file {str(p)!r} is not a state dict (it holds a {kind}{hint}); expected parameter "
                       "names mapped to tensors, e.g. torch.save(model.state_dict(), FILE)")


def _candidates(state: dict[str, torch.Tensor]) -> list[tuple[str, dict[str, torch.Tensor]]]:
    out = [("", state)]
    for prefix in PREFIXES:
        sub = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        if sub:
            out.append((prefix, sub))
    return out


def _under(key: str, modules: list[str]) -> bool:
    return any(key == m or key.startswith(m + ".") for m in modules)


def _names(keys: list[str]) -> str:
    keys = sorted(keys)
    more = f", ... ({len(keys)} in all)" if len(keys) > SHOW else ""
    return ", ".join(keys[:SHOW]) + more


def match_state(model: nn.Module, state: dict[str, torch.Tensor], optional: list[str] = ()) -> tuple[
        dict[str, torch.Tensor], list[str], list[str], list[str], str]:
    """Choose the prefix under which `state` fits `model` best; return (state to load, missing, unexpected,
    wrong shapes, prefix). Keys under the `optional` modules (the classifier) may be absent or differ."""
    own = model.state_dict()
    best = None
    for prefix, cand in _candidates(state):
        hits = sum(1 for k in cand if k in own)
        if best is None or hits > best[0]:
            best = (hits, prefix, cand)
    _, prefix, cand = best
    missing = [k for k in own if k not in cand and not _under(k, optional)]
    unexpected = [k for k in cand if k not in own and not _under(k, optional)]
    shapes = [f"{k}: file {tuple(cand[k].shape)} vs model {tuple(own[k].shape)}" for k in cand
              if k in own and cand[k].shape != own[k].shape and not _under(k, optional)]
    use = {k: v for k, v in cand.items() if k in own and v.shape == own[k].shape}
    return use, missing, unexpected, shapes, prefix


def _timm_filtered(model: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor] | None:
    """timm's own conversion of original checkpoints (e.g. official DeiT/DINO key names), where the model has one."""
    fn = getattr(sys.modules.get(type(model).__module__), "checkpoint_filter_fn", None)
    if fn is None:
        return None
    try:
        return dict(fn(state, model))
    except Exception:  # noqa: BLE001 - a filter that does not apply to this file
        return None


def load_weights(model: nn.Module, path: str | Path, name: str, optional: list[str] = ()) -> dict[str, Any] | None:
    """Load the weights in file `path` into `model` (architecture `name`) with strict key checking.

    Returns the curator metadata when the file is a curator encoder checkpoint, else None."""
    state, meta = read_weights(path)
    p = checkpoint_path(path)
    if meta is not None and meta.get("backbone") != name:
        raise WeightsError(f"weights file {str(p)!r} is a curator checkpoint of backbone {meta.get('backbone')!r}, "
                           f"not {name!r}; leave --backbone unset to use its own")
    use, missing, unexpected, shapes, prefix = match_state(model, state, optional)
    if (missing or unexpected or shapes) and name.startswith("timm:"):
        filtered = _timm_filtered(model, state)
        if filtered is not None:
            alt = match_state(model, filtered, optional)
            if not (alt[1] or alt[2] or alt[3]):
                use, missing, unexpected, shapes, prefix = alt
                LOG.info("weights %s: converted with timm's checkpoint_filter_fn", p)
    if missing or unexpected or shapes:
        parts = [f"{len(missing)} missing key(s): {_names(missing)}" if missing else "",
                 f"{len(unexpected)} unexpected key(s): {_names(unexpected)}" if unexpected else "",
                 f"{len(shapes)} of another shape: {'; '.join(shapes[:SHOW])}" if shapes else ""]
        raise WeightsError(f"weights file {str(p)!r} does not fit backbone {name}: "
                           + "; ".join(x for x in parts if x))
    model.load_state_dict(use, strict=not optional)
    if optional:   # strict apart from the classifier, which is checked above and removed by the caller
        left = [k for k in model.state_dict() if k not in use and not _under(k, optional)]
        assert not left, left
    LOG.info("loaded %d tensors from %s%s into %s", len(use), p, f" (prefix {prefix!r} removed)" if prefix else "", name)
    return meta
