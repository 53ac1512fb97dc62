"""The data that `curator bench gpu` reads, packed small enough to travel to a GPU machine (64 MiB in all).

A *source* is the shared CIFAR-10N folder (``cifar10_jpeg.npz``, ``CIFAR-10_human.pt``,
``embeddings-simsiam-r18/train.npy``; see ../shared/datasets/cifar10n/README.md) or a generated miniature of it
(`synthetic_source`, for ``--tiny`` and tests). `pack_data` writes a *data folder* from a source:

| file | what |
| --- | --- |
| ``cifar10_jpeg.npz`` | every training JPEG (SSL parts, JPEG decoding) and `n_test` test JPEGs spread over the classes (the kNN monitor); same arrays as the source |
| ``cifar10n_labels.npz`` | ``worse`` and ``clean`` labels of every training image (uint8), ``class_names`` |
| ``audit_embeddings.npy`` | the shared SimSiam embeddings (float16) of `n_audit` training rows drawn with `seed` |
| ``audit_indices.npy`` | which training rows (sorted) |
| ``PACK.json`` | what was packed from where (sha256 of each source file), sizes |

The shared embeddings alone are 49 MiB and the JPEGs 53 MiB, so only a subset of the embeddings travels: the
audit part says which (``audit_indices.npy``, `n_audit` rows).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import time
from pathlib import Path

import numpy as np

NPZ = "cifar10_jpeg.npz"
LABELS = "cifar10n_labels.npz"
AUDIT_EMB = "audit_embeddings.npy"
AUDIT_IDX = "audit_indices.npy"
PACK = "PACK.json"
SOURCE_LABELS = "CIFAR-10_human.pt"
SOURCE_EMB = "embeddings-simsiam-r18/train.npy"
FILES = (NPZ, LABELS, AUDIT_EMB, AUDIT_IDX, PACK)
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def spread(n_total: int, n: int) -> np.ndarray:
    """`n` rows spread evenly over 0..n_total-1 (the test split is ordered by class)."""
    return np.unique(np.linspace(0, n_total - 1, min(n, n_total)).astype(np.int64))


def _take_jpegs(buf: np.ndarray, offsets: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    parts = [buf[offsets[r]:offsets[r + 1]] for r in rows]
    lens = np.array([len(p) for p in parts], np.int64)
    return (np.concatenate(parts) if parts else np.zeros(0, np.uint8)), np.concatenate([[0], np.cumsum(lens)])


def pack_data(src: str | Path, out: str | Path, *, n_audit: int = 10_000, n_test: int = 2_000, seed: int = 0) -> dict:
    """Write the data folder `out` from source folder `src`; returns the PACK.json record."""
    from curator.data.adapters.cifarn import load_label_file
    from curator.data.problems import DataError

    src, out = Path(src), Path(out)
    for name in (NPZ, SOURCE_LABELS, SOURCE_EMB):
        if not (src / name).is_file():
            raise DataError(f"{str(src / name)!r} not found (the source is the CIFAR-10N folder, see its README)")
    out.mkdir(parents=True, exist_ok=True)
    z = np.load(src / NPZ, allow_pickle=False)
    n_train = len(z["train_offsets"]) - 1
    test_rows = spread(len(z["test_offsets"]) - 1, n_test)
    test_jpeg, test_offsets = _take_jpegs(z["test_jpeg"], z["test_offsets"], test_rows)
    np.savez(out / NPZ, train_jpeg=z["train_jpeg"], train_offsets=z["train_offsets"], train_labels=z["train_labels"],
             test_jpeg=test_jpeg, test_offsets=test_offsets, test_labels=z["test_labels"][test_rows],
             class_names=z["class_names"])
    labels = load_label_file(src / SOURCE_LABELS)
    worse, clean = np.asarray(labels["worse_label"]), np.asarray(labels["clean_label"])
    if len(worse) != n_train or len(clean) != n_train:
        raise DataError(f"{SOURCE_LABELS}: {len(worse)} labels for {n_train} training images")
    np.savez(out / LABELS, worse=worse.astype(np.uint8), clean=clean.astype(np.uint8), class_names=z["class_names"])
    emb = np.load(src / SOURCE_EMB, mmap_mode="r", allow_pickle=False)
    if len(emb) != n_train:
        raise DataError(f"{SOURCE_EMB}: {len(emb)} rows for {n_train} training images")
    idx = np.sort(np.random.default_rng(seed).choice(n_train, size=min(n_audit, n_train), replace=False))
    np.save(out / AUDIT_EMB, np.asarray(emb[idx], dtype=np.float16))
    np.save(out / AUDIT_IDX, idx.astype(np.int64))
    record = {"created": time.strftime("%Y-%m-%d %H:%M"), "source": str(src.resolve()),
              "sha256": {name: _sha256(src / name) for name in (NPZ, SOURCE_LABELS, SOURCE_EMB)},
              "n_train": int(n_train), "n_test": int(len(test_rows)), "n_audit": int(len(idx)), "seed": seed,
              "audit_embeddings": f"{SOURCE_EMB} rows audit_indices.npy ({len(idx)} of {n_train}, seed {seed})"}
    record["bytes"] = {name: (out / name).stat().st_size for name in FILES if name != PACK}
    (out / PACK).write_text(json.dumps(record, indent=2))
    return record


def synthetic_source(folder: str | Path, *, n_train: int = 200, n_test: int = 60, dim: int = 32, noise: float = 0.3,
                     seed: int = 0) -> Path:
    """A miniature of the shared CIFAR-10N folder: 32-px JPEGs whose colour depends on the class, a CIFAR-N label
    file (``worse_label`` = ``clean_label`` with `noise` of them changed) and class-clustered float16 embeddings."""
    import torch
    from PIL import Image

    folder = Path(folder)
    (folder / SOURCE_EMB).parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    palette = rng.integers(0, 256, (10, 3))

    def jpegs(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        parts = []
        for c in labels:
            img = np.clip(palette[c] + rng.normal(0, 25, (32, 32, 3)), 0, 255).astype(np.uint8)
            buf = io.BytesIO()
            Image.fromarray(img).save(buf, format="JPEG", quality=75)
            parts.append(np.frombuffer(buf.getvalue(), np.uint8))
        lens = np.array([len(p) for p in parts], np.int64)
        return np.concatenate(parts), np.concatenate([[0], np.cumsum(lens)])

    clean = rng.integers(0, 10, n_train)
    test = np.sort(rng.integers(0, 10, n_test))                     # ordered by class, as the archive's test split is
    tr_j, tr_o = jpegs(clean)
    te_j, te_o = jpegs(test)
    np.savez(folder / NPZ, train_jpeg=tr_j, train_offsets=tr_o, train_labels=clean.astype(np.uint8), test_jpeg=te_j,
             test_offsets=te_o, test_labels=test.astype(np.uint8), class_names=np.array(CLASS_NAMES))
    worse = clean.copy()
    flip = rng.random(n_train) < noise
    worse[flip] = (clean[flip] + rng.integers(1, 10, int(flip.sum()))) % 10
    torch.save({"clean_label": clean.astype(np.int64), "worse_label": worse.astype(np.int64)}, folder / SOURCE_LABELS)
    centres = rng.normal(0, 3, (10, dim))
    np.save(folder / SOURCE_EMB, (centres[clean] + rng.normal(0, 1, (n_train, dim))).astype(np.float16))
    return folder


def write_audit_csv(data: str | Path, rows: np.ndarray, path: str | Path) -> Path:
    """A CSV manifest (``path``, ``label`` = CIFAR-10N worse, ``true_label`` = clean) of training `rows` and the
    ``classes.txt`` beside it (every class, also one absent from `rows`), for
    ``curator audit --dataset csv --embeddings``: the image files are not shipped, the embeddings stand in."""
    import pandas as pd

    z = np.load(Path(data) / LABELS, allow_pickle=False)
    names = np.asarray(z["class_names"]).astype(str)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    (path.parent / "classes.txt").write_text("".join(f"{c}\n" for c in names))   # all ten, in CIFAR's order
    pd.DataFrame({"path": [f"train/{r:05d}.jpg" for r in rows], "label": names[z["worse"][rows]],
                  "true_label": names[z["clean"][rows]]}).to_csv(path, index=False)
    return path


#: what may travel to the GPU machine: the working tree (tracked and untracked-not-ignored files) plus carried paths
LIMIT_BYTES = 64 * 2**20
CARRY = ".gpucarry"


def tree_bytes(repo: str | Path) -> int:
    """Bytes of the files git would send from `repo`: tracked and untracked files that are not ignored."""
    import subprocess

    repo = Path(repo)
    names = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=repo,
                           check=True, capture_output=True).stdout.split(b"\0")
    total = 0
    for name in filter(None, names):
        p = repo / os.fsdecode(name)
        if p.is_file() and not p.is_symlink():
            total += p.stat().st_size
    return total


def folder_bytes(folder: str | Path) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


def device_command(*, timeout_s: int = 540, data: str = f"{CARRY}/data") -> str:
    """The one bash line the GPU machine runs (in a copy of the repository root, ``carry=[".gpucarry"]``): no install
    (the machine's python3 has torch, torchvision, numpy, pandas, pyarrow, scikit-learn, scipy, pillow; curator runs
    from the tree through PYTHONPATH), then `curator bench gpu` under `timeout`; results land in $OUT."""
    return ("set -o pipefail; nvidia-smi -L; export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD; "
            f"timeout -k 10 {timeout_s} python3 -m curator bench gpu --data {data} --out $OUT/gpu.json "
            "--work /tmp/curator-bench-gpu 2>&1 | tee $OUT/gpu.log")


def build_carry(repo: str | Path, src: str | Path, *, n_audit: int = 10_000, n_test: int = 2_000,
                seed: int = 0, limit: int = LIMIT_BYTES) -> dict:
    """Pack `src` into REPO/.gpucarry/data and check that tree + carry stay within `limit` bytes; returns the sizes
    and the device command (also written to .gpucarry/COMMAND.txt). Raises DataError when over the limit."""
    import shutil

    from curator.data.problems import DataError

    repo = Path(repo)
    carry = repo / CARRY
    if carry.exists():
        shutil.rmtree(carry)
    record = pack_data(src, carry / "data", n_audit=n_audit, n_test=n_test, seed=seed)
    command = device_command()
    (carry / "COMMAND.txt").write_text(command + "\n")
    sizes = {"tree_bytes": tree_bytes(repo), "carry_bytes": folder_bytes(carry)}
    sizes["total_bytes"] = sizes["tree_bytes"] + sizes["carry_bytes"]
    sizes["limit_bytes"] = limit
    if sizes["total_bytes"] > limit:
        raise DataError(f"tree {sizes['tree_bytes'] / 2**20:.1f} MiB + {CARRY} {sizes['carry_bytes'] / 2**20:.1f} MiB "
                        f"= {sizes['total_bytes'] / 2**20:.1f} MiB is over the {limit / 2**20:.0f} MiB that may travel; "
                        "pack fewer audit rows (--n-audit) or remove untracked files")
    if len(command) > 2000:
        raise DataError(f"the device command is {len(command)} characters (at most 2,000)")
    return {**sizes, "command": command, "pack": record}
