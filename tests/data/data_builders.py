"""Builders of miniature datasets in the official on-disk layouts (written into tmp_path)."""
from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
from PIL import Image

CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CLOTHING_NAMES = ["T-Shirt", "Shirt", "Knitwear", "Chiffon", "Sweater", "Hoodie", "Windbreaker", "Jacket",
                  "Downcoat", "Suit", "Shawl", "Dress", "Vest", "Underwear"]


def _dump(path: Path, obj) -> None:
    path.write_bytes(pickle.dumps(obj, protocol=2))


def write_cifar(root: Path, *, n_classes: int = 10, per_batch: int = 20, n_test: int = 20, seed: int = 0,
                train_labels: np.ndarray | None = None) -> dict:
    """CIFAR-10 (5 batches) or CIFAR-100 (one train file) miniature in torchvision's python layout."""
    rng = np.random.default_rng(seed)
    if n_classes == 10:
        folder, train_files, meta_file, names_key, labels_key = root / "cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], "batches.meta", "label_names", "labels"
        names = CIFAR10_NAMES
    else:
        folder, train_files, meta_file, names_key, labels_key = root / "cifar-100-python", ["train"], "meta", "fine_label_names", "fine_labels"
        names = [f"class{c:02d}" for c in range(n_classes)]
    folder.mkdir(parents=True)
    n_train = per_batch * len(train_files)
    labels = rng.integers(0, n_classes, n_train) if train_labels is None else np.asarray(train_labels)
    data = rng.integers(0, 256, (n_train, 3072), dtype=np.uint8)
    for b, name in enumerate(train_files):
        sl = slice(b * per_batch, (b + 1) * per_batch)
        _dump(folder / name, {"batch_label": f"batch {b}", labels_key: [int(x) for x in labels[sl]], "data": data[sl],
                              "filenames": [f"img{i}.png" for i in range(sl.start, sl.stop)]})
    test_labels = rng.integers(0, n_classes, n_test)
    test_data = rng.integers(0, 256, (n_test, 3072), dtype=np.uint8)
    _dump(folder / ("test_batch" if n_classes == 10 else "test"), {labels_key: [int(x) for x in test_labels], "data": test_data})
    _dump(folder / meta_file, {names_key: names, "num_cases_per_batch": per_batch})
    return {"folder": folder, "labels": labels, "data": data, "test_labels": test_labels, "names": names}


def jpeg_bytes(rng: np.random.Generator, size: int = 8, mode: str = "RGB") -> bytes:
    arr = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).convert(mode).save(buf, format="JPEG")
    return buf.getvalue()


def write_clothing1m(root: Path, *, n_noisy: int = 240, n_clean_train: int = 60, n_overlap: int = 40,
                     n_val: int = 20, n_test: int = 20, seed: int = 0) -> dict:
    """Miniature Clothing1M: images/<0-9>/<yy>/<name>.jpg, kv files, key lists, category names.

    The first `n_overlap` noisy-training images also appear in clean_label_kv.txt (with a clean
    label that differs from the noisy one for every other image) and in the clean training list.
    """
    rng = np.random.default_rng(seed)
    n_total = n_noisy + (n_clean_train - n_overlap) + n_val + n_test
    paths = [f"images/{i % 10}/{i % 7:02d}/{i:05d}.jpg" for i in range(n_total)]
    for p in paths:
        full = root / p
        full.parent.mkdir(parents=True, exist_ok=True)
        full.write_bytes(jpeg_bytes(rng))
    noisy_keys = paths[:n_noisy]
    clean_train_keys = paths[:n_overlap] + paths[n_noisy:n_noisy + n_clean_train - n_overlap]
    val_keys = paths[n_noisy + n_clean_train - n_overlap:][:n_val]
    test_keys = paths[n_noisy + n_clean_train - n_overlap + n_val:]
    noisy = {p: int(rng.integers(0, 14)) for p in noisy_keys}
    clean = {p: int(rng.integers(0, 14)) for p in clean_train_keys + val_keys + test_keys}
    for j, p in enumerate(paths[:n_overlap]):  # every other overlapping image is mislabelled
        noisy[p] = clean[p] if j % 2 == 0 else (clean[p] + 1) % 14
    (root / "noisy_label_kv.txt").write_text("".join(f"{p} {l}\n" for p, l in noisy.items()))
    (root / "clean_label_kv.txt").write_text("".join(f"{p} {l}\n" for p, l in clean.items()))
    for name, keys in (("noisy_train", noisy_keys), ("clean_train", clean_train_keys), ("clean_val", val_keys), ("clean_test", test_keys)):
        (root / f"{name}_key_list.txt").write_text("".join(f"{p}\n" for p in keys))
    (root / "category_names_eng.txt").write_text("\n".join(CLOTHING_NAMES) + "\n")
    return {"noisy": noisy, "clean": clean, "noisy_keys": noisy_keys, "clean_train_keys": clean_train_keys,
            "val_keys": val_keys, "test_keys": test_keys, "n_overlap": n_overlap}
