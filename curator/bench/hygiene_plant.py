"""An image folder with planted hygiene problems and the truth about each (for `curator bench hygiene` and tests).

`plant_folder` writes ``OUT/train/<class>/*.jpg`` and ``OUT/test/<class>/*.jpg`` (the imagefolder adapter's
layout; sample id = the relative path) from clean base images and plants, in the training split, `n_each`
samples of every problem in `PROBLEMS`:

| planted            | what is written                                                                | the check that should find it |
|--------------------|--------------------------------------------------------------------------------|-------------------------------|
| dup_exact          | a byte-identical copy of a training image, same class                          | duplicate (both), exact       |
| dup_near           | a copy re-encoded at JPEG quality 50 with brightness + 6                        | duplicate (both)              |
| dup_flip           | a byte-identical copy in another class folder (a flipped label)                | duplicate (both); label (the copy) |
| leak_exact         | a byte-identical copy of a training image in ``test/``                          | leak (the training image)     |
| leak_near          | a re-encoded copy (as dup_near) in ``test/``                                    | leak (the training image)     |
| dark               | pixels × f, f ∈ `SEVERITY["dark"]`                                             | dark                          |
| light              | 255 − (255 − pixels) × f                                                      | light                         |
| blurry             | Gaussian blur of radius r ∈ `SEVERITY["blurry"]`                               | blurry                        |
| blank              | one random colour plus Gaussian noise of σ = 2 grey levels                      | low_information               |
| grayscale          | converted to grey (L) and back to RGB                                          | grayscale                     |
| odd_size           | resized to 2× or ½× the side                                                   | odd_size                      |
| odd_aspect         | resized to 1 : 2.5 or 2.5 : 1 (same area)                                       | odd_aspect_ratio              |
| outlier            | a foreign image (`foreign_image`: a mosaic of random colours, like a corrupted file) | outlier |

Degraded images (dark … odd_aspect) replace the image they were made from, so each planted problem exists
once. Everything is JPEG-encoded at quality 90 unless it is a byte copy. The truth (`Planted`) lists every
training sample with what was planted in it, and the expected leak pairs.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageFilter

PROBLEMS = ("dup_exact", "dup_near", "dup_flip", "leak_exact", "leak_near", "dark", "light", "blurry", "blank",
            "grayscale", "odd_size", "odd_aspect", "outlier")
SEVERITY = {"dark": (0.15, 0.25, 0.35), "light": (0.15, 0.25, 0.35), "blurry": (0.8, 1.2, 1.6)}
#: planted problem -> the curator check (and CleanVision issue type) that should flag the training sample
TARGETS = {"dark": "dark", "light": "light", "blurry": "blurry", "blank": "low_information", "grayscale": "grayscale",
           "odd_size": "odd_size", "odd_aspect": "odd_aspect_ratio", "outlier": "outlier"}


@dataclass
class Planted:
    train: pd.DataFrame      # sample_id, label, planted ("" = clean), role ("original"/"copy"/""), severity, source
    leaks: pd.DataFrame      # sample_id (training), other_id (test), match ("exact"/"near")
    root: Path


def _jpeg(pixels: np.ndarray, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def near_copy(pixels: np.ndarray) -> bytes:
    """The re-encoded copy of dup_near / leak_near: brightness + 6 grey levels, JPEG quality 50."""
    return _jpeg(np.clip(pixels.astype(np.int16) + 6, 0, 255).astype(np.uint8), quality=50)


def degrade(kind: str, pixels: np.ndarray, rng: np.random.Generator, severity: float | None = None) -> np.ndarray:
    """The degraded version of `pixels` (H, W, 3) uint8 for one of dark … odd_aspect, blank and outlier."""
    h, w = pixels.shape[:2]
    f = pixels.astype(np.float32)
    if kind == "dark":
        return (f * severity).astype(np.uint8)
    if kind == "light":
        return (255.0 - (255.0 - f) * severity).astype(np.uint8)
    if kind == "blurry":
        return np.asarray(Image.fromarray(pixels).filter(ImageFilter.GaussianBlur(severity)))
    if kind == "blank":
        colour = rng.integers(0, 256, 3)
        return np.clip(colour + rng.normal(0, 2, (h, w, 3)), 0, 255).astype(np.uint8)
    if kind == "grayscale":
        return np.asarray(Image.fromarray(pixels).convert("L").convert("RGB"))
    if kind == "odd_size":
        s = 2.0 if rng.random() < 0.5 else 0.5
        return np.asarray(Image.fromarray(pixels).resize((max(1, int(w * s)), max(1, int(h * s))), Image.BILINEAR))
    if kind == "odd_aspect":
        a = 2.5 if rng.random() < 0.5 else 1 / 2.5
        nw, nh = max(1, int(round(w * np.sqrt(a)))), max(1, int(round(h / np.sqrt(a))))
        return np.asarray(Image.fromarray(pixels).resize((nw, nh), Image.BILINEAR))
    if kind == "outlier":
        return foreign_image(h, w, rng)
    raise ValueError(f"unknown planted problem {kind!r}")


def foreign_image(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """An image unlike any photograph and unlike every other one: a mosaic of random colours in blocks of a random
    size (2 to 8 pixels), as a corrupted or garbage file looks."""
    block = int(rng.integers(2, 9))
    cells = rng.integers(0, 256, (-(-h // block), -(-w // block), 3), dtype=np.uint8)
    return np.repeat(np.repeat(cells, block, axis=0), block, axis=1)[:h, :w]


def plant_folder(out: str | Path, train_pixels: np.ndarray, train_labels: np.ndarray, test_pixels: np.ndarray,
                 test_labels: np.ndarray, class_names: list[str], *, n_each: int = 20, seed: int = 0,
                 train_bytes: list[bytes] | None = None, test_bytes: list[bytes] | None = None) -> Planted:
    """Write the folder (see the module docstring) and return the truth. `train_bytes` / `test_bytes` are the
    images' original encodings, written unchanged for the clean images when given."""
    rng = np.random.default_rng(seed)
    out = Path(out)
    n, c = len(train_pixels), len(class_names)
    for split in ("train", "test"):
        for name in class_names:
            (out / split / name).mkdir(parents=True, exist_ok=True)
    order = rng.permutation(n)
    need = n_each * len(PROBLEMS)
    if need > n // 2:
        raise ValueError(f"{n} training images are too few to plant {n_each} of each of {len(PROBLEMS)} problems")
    chosen = {kind: order[i * n_each:(i + 1) * n_each] for i, kind in enumerate(PROBLEMS)}
    planted = np.full(n, "", dtype=object)
    severity = np.full(n, np.nan)
    for kind, rows in chosen.items():
        planted[rows] = kind
    encoded: list[bytes] = []
    train_rows, leaks = [], []
    ids = [f"train/{class_names[int(train_labels[i])]}/{i:05d}.jpg" for i in range(n)]
    for i in range(n):
        kind, data = planted[i], None
        if kind in SEVERITY:
            severity[i] = SEVERITY[kind][int(rng.integers(0, len(SEVERITY[kind])))]
            data = _jpeg(degrade(kind, train_pixels[i], rng, float(severity[i])))
        elif kind in ("blank", "grayscale", "odd_size", "odd_aspect", "outlier"):
            data = _jpeg(degrade(kind, train_pixels[i], rng))
        else:
            data = train_bytes[i] if train_bytes is not None else _jpeg(train_pixels[i])
        (out / ids[i]).write_bytes(data)
        encoded.append(data)
        role = "original" if kind.startswith(("dup_", "leak_")) else ""
        train_rows.append({"sample_id": ids[i], "label": int(train_labels[i]), "planted": kind, "role": role,
                           "severity": severity[i], "source": i})
    for j, i in enumerate(np.concatenate([chosen["dup_exact"], chosen["dup_near"], chosen["dup_flip"]])):
        kind = planted[i]
        label = int(train_labels[i]) if kind != "dup_flip" else int((train_labels[i] + rng.integers(1, c)) % c)
        sid = f"train/{class_names[label]}/copy{j:04d}.jpg"
        (out / sid).write_bytes(near_copy(train_pixels[i]) if kind == "dup_near" else encoded[i])
        train_rows.append({"sample_id": sid, "label": label, "planted": kind, "role": "copy", "severity": np.nan,
                           "source": int(i)})
    for j in range(len(test_pixels)):
        sid = f"test/{class_names[int(test_labels[j])]}/{j:05d}.jpg"
        (out / sid).write_bytes(test_bytes[j] if test_bytes is not None else _jpeg(test_pixels[j]))
    for j, i in enumerate(np.concatenate([chosen["leak_exact"], chosen["leak_near"]])):
        kind = planted[i]
        sid = f"test/{class_names[int(train_labels[i])]}/leak{j:04d}.jpg"
        (out / sid).write_bytes(encoded[i] if kind == "leak_exact" else near_copy(train_pixels[i]))
        leaks.append({"sample_id": ids[i], "other_id": sid, "match": kind.split("_")[1]})
    return Planted(pd.DataFrame(train_rows), pd.DataFrame(leaks, columns=["sample_id", "other_id", "match"]), out)


def expected(truth: pd.DataFrame, check: str) -> np.ndarray:
    """(N,) bool over `truth` rows: the samples the check `check` should flag. Checks: the quality checks of
    `TARGETS`, "outlier", "duplicate", "exact_duplicate", "near_duplicate", "leak", "label" (the flipped copies)."""
    p, role = truth["planted"].to_numpy(object), truth["role"].to_numpy(object)
    if check == "duplicate":
        return np.isin(p, ["dup_exact", "dup_near", "dup_flip"])
    if check == "exact_duplicate":
        return np.isin(p, ["dup_exact", "dup_flip"])
    if check == "near_duplicate":
        return p == "dup_near"
    if check == "leak":
        return np.isin(p, ["leak_exact", "leak_near"])
    if check == "label":
        return (p == "dup_flip") & (role == "copy")
    kinds = [k for k, v in TARGETS.items() if v == check]
    if not kinds:
        raise ValueError(f"unknown check {check!r}")
    return np.isin(p, kinds)
