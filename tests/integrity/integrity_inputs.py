"""Builders of broken and hostile inputs for the integrity tests (all written under a tmp dir)."""
from __future__ import annotations

import io
import os
import pickle
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def image_bytes(seed: int = 0, size: int = 8, mode: str = "RGB", fmt: str = "PNG") -> bytes:
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).convert(mode)
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def png_16bit(seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 65535, (8, 8)).astype(np.uint16)).save(buf, format="PNG")
    return buf.getvalue()


def bomb_png(side: int = 40_000) -> bytes:
    """A valid PNG header declaring side x side RGB pixels, with almost no data (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def image_folder(root: Path, classes=("cat", "dog"), per_class: int = 3, *, mode: str = "RGB") -> Path:
    """root/<class>/<i>.png, `per_class` small images per class."""
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            (root / name / f"{i}.png").write_bytes(image_bytes(seed=10 * c + i, mode=mode))
    return root


def csv_table(folder: Path, rows: list[dict], *, classes: list[str] | None = None, make_files: bool = True) -> Path:
    """folder/m.csv with `rows` (each needs path, label); image files are created for relative paths."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, r in enumerate(rows):
        p = str(r.get("path", ""))
        if make_files and r.pop("_make", True) and p and not os.path.isabs(p) and ".." not in p:
            (folder / p).parent.mkdir(parents=True, exist_ok=True)
            (folder / p).write_bytes(image_bytes(seed=i))
        r.pop("_make", None)
    pd.DataFrame(rows).to_csv(folder / "m.csv", index=False)
    if classes:
        (folder / "classes.txt").write_text("\n".join(classes) + "\n")
    return folder / "m.csv"


class Evil:
    """Unpickling this runs `touch marker` — what a crafted file would do with a plain pickle.load."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def evil_pickle(marker: Path, protocol: int = 2) -> bytes:
    return pickle.dumps({"data": Evil(marker), "labels": [0]}, protocol=protocol)


def write_cifar10(root: Path, per_batch: int = 4) -> Path:
    from tests.data.data_builders import write_cifar

    return write_cifar(root, per_batch=per_batch, n_test=4)["folder"]
