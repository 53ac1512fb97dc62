"""Pinned samples: which file, and which content, each manifest row is (docs/datasets.md).

`pin_manifest` adds two columns to a dataset's manifest when it is loaded:

| column | meaning                                                                                  |
|--------|------------------------------------------------------------------------------------------|
| file   | for images on disk: the path relative to the dataset's image root (``Dataset.root``),    |
|        | exactly the file that was read; ``""`` for images held in memory (digits, CIFAR pickles) |
| pin    | a cheap content fingerprint: ``stat:<size>:<mtime_ns>`` for files (one ``os.stat``),      |
|        | ``px:<hash>`` of the decoded pixels for in-memory arrays, ``b2:<hash>`` of the encoded    |
|        | bytes for in-memory encoded images; ``""`` when nothing could be pinned (a file that was  |
|        | missing at load time, or ``extra={"stat_files": False}``)                                 |

A reader that shows or re-reads images later (the explorer, `curator export`, a re-run of the
pipeline) calls `changed_samples` and gets every sample whose file is gone or whose fingerprint
differs, by sample id and reason, instead of silently showing another image under the sample's id.
Files are found by their pinned path (`PinnedFileImages`), never by position in a re-listed folder.
"""
from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from curator.data.images import ArrayImages, EncodedImages, FileImages, ImageError, ImageSource

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChangedSample:
    sample_id: str
    file: str
    reason: str


def stat_pin(st: os.stat_result) -> str:
    return f"stat:{st.st_size}:{st.st_mtime_ns}"


def pixels_pin(pixels: np.ndarray) -> str:
    h = hashlib.blake2b(digest_size=8)
    h.update(str(pixels.shape).encode())
    h.update(np.ascontiguousarray(pixels).tobytes())
    return "px:" + h.hexdigest()


def bytes_pin(raw: bytes) -> str:
    return "b2:" + hashlib.blake2b(raw, digest_size=8).hexdigest()


def _file_pins(root: Path, files: Sequence[str], stat: bool) -> list[str]:
    if not stat:
        return [""] * len(files)
    out = []
    for rel in files:
        try:
            out.append(stat_pin(os.stat(root / rel)) if rel else "")
        except OSError:
            out.append("")  # missing or unreadable: already reported by the adapter's path check
    return out


def pin_manifest(manifest: pd.DataFrame, images: ImageSource, *, stat_files: bool = True) -> pd.DataFrame:
    """`manifest` with the ``file`` and ``pin`` columns filled for every row (see the module docstring)."""
    refs = manifest["image_ref"].to_numpy(np.int64)
    if isinstance(images, FileImages):
        files = [images.relpaths[r] if 0 <= r < len(images.relpaths) else "" for r in refs]
        pins = _file_pins(images.root, files, stat_files)
    elif isinstance(images, ArrayImages):
        files = [""] * len(refs)
        pins = [pixels_pin(images.array[r]) for r in refs]
    elif isinstance(images, EncodedImages):
        files = [""] * len(refs)
        pins = [bytes_pin(images.raw(int(r))) for r in refs]
    else:
        files, pins = [""] * len(refs), [""] * len(refs)
    out = manifest.copy()
    out["file"] = pd.Series(files, index=manifest.index, dtype=str)
    out["pin"] = pd.Series(pins, index=manifest.index, dtype=str)
    return out


def _current_pin(root: Path | None, file: str, pin: str, images: ImageSource | None, ref: int) -> tuple[str | None, str]:
    """(the pin now, or None if the sample cannot be read; why not)."""
    if pin.startswith("stat:"):
        if root is None:
            return None, "the dataset's image root is unknown"
        try:
            return stat_pin(os.stat(root / file)), ""
        except FileNotFoundError:
            return None, f"file {file!r} is missing"
        except OSError as exc:
            return None, f"file {file!r} cannot be read ({exc.strerror or exc})"
    if images is None or not 0 <= ref < len(images):
        return None, f"image #{ref} is no longer in the dataset"
    try:
        if pin.startswith("px:") and isinstance(images, ArrayImages):
            return pixels_pin(images.array[ref]), ""
        if pin.startswith("b2:") and isinstance(images, EncodedImages):
            return bytes_pin(images.raw(ref)), ""
        return pixels_pin(images.read(ref)), ""
    except ImageError as exc:
        return None, exc.reason


def _describe_change(old: str, new: str) -> str:
    if old.startswith("stat:") and new.startswith("stat:"):
        old_size, new_size = old.split(":")[1], new.split(":")[1]
        if old_size != new_size:
            return f"file changed since the run read it (size {old_size} -> {new_size} bytes)"
        return "file changed since the run read it (same size, modification time differs)"
    return "image changed since the run read it (its pixels differ)"


def changed_samples(manifest: pd.DataFrame, *, root: str | os.PathLike | None = None,
                    images: ImageSource | None = None) -> list[ChangedSample]:
    """Samples of `manifest` (with pin columns) whose image is gone or differs from its pin.

    File pins are checked with one ``os.stat`` under `root`; pixel / byte pins need `images`,
    the re-opened dataset's accessor. Rows without a pin (``""``) cannot be checked and are skipped.
    """
    if "pin" not in manifest.columns:
        return []
    root = Path(root) if root is not None else None
    out: list[ChangedSample] = []
    ids = manifest["sample_id"].astype(str).to_numpy()
    files = manifest["file"].astype(str).to_numpy() if "file" in manifest.columns else np.full(len(manifest), "")
    pins = manifest["pin"].astype(str).to_numpy()
    refs = manifest["image_ref"].to_numpy(np.int64)
    for sid, file, pin, ref in zip(ids, files, pins, refs):
        if not pin:
            continue
        now, why = _current_pin(root, file, pin, images, int(ref))
        if now is None:
            out.append(ChangedSample(sid, file, why))
        elif now != pin:
            out.append(ChangedSample(sid, file, _describe_change(pin, now)))
    return out


def describe_changes(changed: Sequence[ChangedSample], *, limit: int = 10) -> str:
    """'3 samples changed: a.png (file 'a.png' is missing), ...' for a message."""
    head = ", ".join(f"{c.sample_id} ({c.reason})" for c in changed[:limit])
    more = f", and {len(changed) - limit} more" if len(changed) > limit else ""
    return f"{len(changed)} sample{'s' if len(changed) != 1 else ''} changed: {head}{more}"


class PinnedFileImages(ImageSource):
    """Image files addressed by the pinned ``file`` of each manifest row, indexed by ``image_ref``.

    Built from a run's manifest, so sample i always shows the file the run read for sample i, even
    after files were added to or removed from the folder. Paths are still refused when they
    escape the root (`curator.data.images.safe_join`).
    """

    def __init__(self, root: str | os.PathLike, manifest: pd.DataFrame, column: str = "file"):
        refs = manifest["image_ref"].to_numpy(np.int64)
        n = int(refs.max()) + 1 if len(refs) else 0
        relpaths = [""] * n
        for r, f in zip(refs, manifest[column].astype(str)):
            if r >= 0:
                relpaths[r] = f
        self.files = FileImages(root, relpaths)

    @property
    def root(self) -> Path:
        return self.files.root

    def __len__(self) -> int:
        return len(self.files)

    def read(self, ref: int) -> np.ndarray:
        if not self.files.relpaths[ref]:
            raise ImageError(f"image #{ref} has no pinned file in the run's manifest", "missing_file")
        return self.files.read(ref)

    def describe(self, ref: int) -> str:
        return self.files.describe(ref)
