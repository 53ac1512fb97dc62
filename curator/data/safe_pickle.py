"""A restricted unpickler for dataset files that come as pickles (CIFAR's python layout).

`pickle.load` on a user-supplied file runs whatever callable the file names (a crafted
``__reduce__`` can call ``os.system``). CIFAR batches only ever need plain containers, strings,
numbers and numpy's array reconstruction, so `load_pickle` allows exactly those globals and
refuses everything else with a `DataError` that names the file and the refused global. Whatever
else a crafted or corrupt file makes the unpickler raise (a declared 17 TB bytearray, an integer
too large to convert, nesting too deep, a truncated stream) is also a `DataError` naming the file.

Allowed globals:
- ``builtins``: dict, list, tuple, set, frozenset, str, bytes, bytearray, int, float, complex, bool;
- ``_codecs.encode`` (how Python 3 writes ``bytes`` into protocol-2 pickles; it only encodes text);
- numpy: ``numpy.core.multiarray._reconstruct`` / ``numpy._core.multiarray._reconstruct``,
  ``numpy.ndarray``, ``numpy.dtype``, ``numpy.core.multiarray.scalar`` (numpy scalars) and
  ``numpy.core.numeric._frombuffer`` (how protocol 5 writes arrays); the ``numpy._core`` spellings too.
"""
from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import Any

from curator.data.problems import DataError

_BUILTINS = {"dict", "list", "tuple", "set", "frozenset", "str", "bytes", "bytearray", "int", "float", "complex", "bool"}
_NUMPY_CORE = ("numpy.core.multiarray", "numpy._core.multiarray")
_NUMPY_CORE_NAMES = {"_reconstruct", "scalar"}
_NUMPY_NUMERIC = ("numpy.core.numeric", "numpy._core.numeric")  # protocol 5 writes arrays via _frombuffer


class RefusedGlobal(pickle.UnpicklingError):
    """The pickle asked for a global outside the allow-list."""

    def __init__(self, module: str, name: str):
        super().__init__(f"refused global {module}.{name}")
        self.qualified = f"{module}.{name}"


class RestrictedUnpickler(pickle.Unpickler):
    """`pickle.Unpickler` whose `find_class` only resolves the allow-listed globals."""

    def find_class(self, module: str, name: str) -> Any:
        if module in ("builtins", "__builtin__") and name in _BUILTINS:
            return super().find_class("builtins", name)
        if module == "_codecs" and name == "encode":
            return super().find_class(module, name)
        if module in _NUMPY_CORE and name in _NUMPY_CORE_NAMES:
            import numpy as np

            core = getattr(np, "_core", None) or np.core  # numpy 2 moved numpy.core to numpy._core
            return getattr(core.multiarray, name)
        if module in _NUMPY_NUMERIC and name == "_frombuffer":
            import numpy as np

            core = getattr(np, "_core", None) or np.core
            return core.numeric._frombuffer
        if module == "numpy" and name in ("ndarray", "dtype"):
            import numpy as np

            return getattr(np, name)
        raise RefusedGlobal(module, name)


def loads_restricted(data: bytes, *, encoding: str = "latin1", source: str = "<bytes>") -> Any:
    """Unpickle `data` with the allow-list; `source` names the origin in error messages."""
    try:
        return RestrictedUnpickler(io.BytesIO(data), encoding=encoding).load()
    except RefusedGlobal as exc:
        raise DataError(f"{source}: refused to unpickle global {exc.qualified!r} "
                        "(only containers, numbers, strings and numpy arrays are allowed in dataset pickles)") from None
    except MemoryError:
        raise DataError(f"{source}: the pickle declares an object too large to build (a crafted or corrupt file); "
                        "refused") from None
    except RecursionError:
        raise DataError(f"{source}: the pickle nests objects too deeply (a crafted or corrupt file); refused") from None
    except Exception as exc:  # noqa: BLE001 - whatever a crafted file makes the unpickler raise is "unreadable"
        text = str(exc)
        text = text if len(text) <= 200 else text[:200] + "..."
        raise DataError(f"{source}: not a readable pickle ({type(exc).__name__}: {text})") from None


def load_pickle(path: str | os.PathLike, *, encoding: str = "latin1") -> Any:
    """Load a pickle file with `RestrictedUnpickler`.

    ``encoding="latin1"`` is numpy's recommended way to read Python-2 pickles of arrays (CIFAR's
    batches); keys that were Python-2 ``str`` come back as ``str``.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"missing file {str(path)!r}") from None
    except OSError as exc:
        raise DataError(f"cannot read {str(path)!r}: {exc}") from None
    return loads_restricted(data, encoding=encoding, source=str(path))
