"""The bad-input catalogue (issue 11): every broken or hostile input a user or an attacker can hand
to the CLI, each built from scratch in tmp_path and run through `curator.cli.main` in-process.

For every case: the exit code; that the output names the file or sample; that no Python traceback
is printed; for a user error, exactly one ERROR line; what happened to the counts (``inspect
--json``: samples kept, problems and notes by kind); where a crafted file tries to run code, that
the marker file it would create does not exist. docs/datasets.md lists the same cases as a table.
"""
from __future__ import annotations

import json
import os
import pickle
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pytest

from curator.cli import main
from curator.log import setup_logging

from integrity_inputs import (Evil, bomb_png, csv_table, evil_pickle, image_bytes, image_folder, png_16bit,
                              write_cifar10)

QUICK_AUDIT = ["--set", "heads.epochs=1", "--set", 'heads.heads=["ce"]', "--set", "evidence.folds=2",
               "--set", "audit.rounds=0"]


@dataclass
class Case:
    argv: list[str]
    code: int
    names: list[str] = field(default_factory=list)         # must appear in stdout + stderr
    n_samples: int | None = None                            # inspect --json: training samples kept
    problems: dict[str, int] = field(default_factory=dict)  # inspect --json: problems by kind (exactly, when given)
    notes: dict[str, int] = field(default_factory=dict)     # inspect --json: notes by kind (at least these)
    n_classes: int | None = None
    marker: Path | None = None                              # a crafted file would create it
    no_stages: Path | None = None                           # a run dir in which no expensive stage may have run
    after: Callable[[], None] | None = None                 # further checks


CASES: dict[str, Callable[[Path], Case]] = {}


def case(fn):
    CASES[fn.__name__.removeprefix("case_").replace("_", "-")] = fn
    return fn


def inspect(root: Path, dataset: str, *extra: str) -> list[str]:
    return ["inspect", "--json", "--dataset", dataset, "--root", str(root), *extra]


# --- image folders --------------------------------------------------------------------------------
@case
def case_if_zero_byte(t):
    image_folder(t / "f")
    (t / "f/cat/zero.png").write_bytes(b"")
    return Case(inspect(t / "f", "imagefolder"), 0, ["cat/zero.png"], n_samples=6, problems={"empty_file": 1})


@case
def case_if_truncated(t):
    image_folder(t / "f")
    good = image_bytes(seed=99, size=32, fmt="JPEG")
    (t / "f/cat/cut.jpg").write_bytes(good[: len(good) // 2])
    return Case(inspect(t / "f", "imagefolder", "--check-images"), 0, ["cat/cut.jpg"], n_samples=6,
                problems={"truncated_image": 1})


@case
def case_if_text_as_jpeg(t):
    image_folder(t / "f")
    (t / "f/dog/fake.jpg").write_text("this is a text file, not a JPEG\n" * 5)
    return Case(inspect(t / "f", "imagefolder", "--check-images"), 0, ["dog/fake.jpg"], n_samples=6,
                problems={"unreadable_image": 1})


@case
def case_if_cmyk(t):
    image_folder(t / "f")
    (t / "f/cat/cmyk.jpg").write_bytes(image_bytes(mode="CMYK", fmt="JPEG"))
    return Case(inspect(t / "f", "imagefolder", "--check-images"), 0, ["cat/cmyk.jpg"], n_samples=7, problems={},
                notes={"cmyk_image": 1})


@case
def case_if_16bit(t):
    image_folder(t / "f")
    (t / "f/cat/deep.png").write_bytes(png_16bit())
    return Case(inspect(t / "f", "imagefolder", "--check-images"), 0, ["cat/deep.png"], n_samples=7, problems={},
                notes={"16bit_image": 1})


@case
def case_if_rgba(t):
    image_folder(t / "f")
    (t / "f/dog/alpha.png").write_bytes(image_bytes(mode="RGBA"))
    return Case(inspect(t / "f", "imagefolder", "--check-images"), 0, ["dog/alpha.png"], n_samples=7, problems={},
                notes={"alpha_image": 1})


@case
def case_if_grayscale_folder(t):
    image_folder(t / "f", mode="L")
    return Case(inspect(t / "f", "imagefolder", "--check-images"), 0, ["cat/0.png"], n_samples=6, problems={},
                notes={"grayscale_image": 6})


@case
def case_if_grayscale_on_bad_error(t):
    image_folder(t / "f", mode="L")
    return Case(inspect(t / "f", "imagefolder", "--check-images", "--on-bad", "error"), 0, [], n_samples=6,
                problems={}, notes={"grayscale_image": 6})


@case
def case_if_one_pixel(t):
    image_folder(t / "f")
    (t / "f/cat/dot.png").write_bytes(image_bytes(size=1))
    return Case(inspect(t / "f", "imagefolder", "--check-images"), 0, [], n_samples=7, problems={})


@case
def case_if_unicode_name(t):
    image_folder(t / "f")
    (t / "f/cat/ünïcödé 猫 ✓.png").write_bytes(image_bytes(seed=5))
    return Case(inspect(t / "f", "imagefolder", "--check-images"), 0, [], n_samples=7, problems={})


@case
def case_if_newline_in_name(t):
    image_folder(t / "f")
    (t / "f/cat/two\nlines.png").write_bytes(image_bytes(seed=6))
    return Case(inspect(t / "f", "imagefolder", "--check-images"), 0, [], n_samples=7, problems={})


@case
def case_if_hidden_file(t):
    image_folder(t / "f")
    (t / "f/cat/.hidden.png").write_bytes(image_bytes(seed=7))
    return Case(inspect(t / "f", "imagefolder"), 0, [".hidden.png"], n_samples=6, problems={},
                notes={"ignored_file": 1})


@case
def case_if_non_image_file(t):
    image_folder(t / "f")
    (t / "f/cat/readme.txt").write_text("notes")
    return Case(inspect(t / "f", "imagefolder"), 0, ["cat/readme.txt"], n_samples=6, problems={},
                notes={"ignored_file": 1})


@case
def case_if_file_outside_class_folders(t):
    image_folder(t / "f")
    (t / "f/stray.png").write_bytes(image_bytes(seed=8))
    return Case(inspect(t / "f", "imagefolder"), 0, ["stray.png"], n_samples=6, problems={}, notes={"ignored_file": 1})


@case
def case_if_dangling_symlink(t):
    image_folder(t / "f")
    os.symlink(t / "nowhere.png", t / "f/cat/gone.png")
    return Case(inspect(t / "f", "imagefolder"), 0, ["cat/gone.png"], n_samples=6, problems={"missing_file": 1})


@case
def case_if_symlink_escaping_root(t):
    image_folder(t / "f")
    (t / "secret.png").write_bytes(image_bytes(seed=9))
    os.symlink(t / "secret.png", t / "f/cat/link.png")
    return Case(inspect(t / "f", "imagefolder", "--check-images"), 0, ["cat/link.png"], n_samples=6,
                problems={"path_escapes_root": 1})


@case
def case_if_fifo(t):
    image_folder(t / "f")
    os.mkfifo(t / "f/cat/pipe.png")  # reading it would block forever
    return Case(inspect(t / "f", "imagefolder", "--check-images"), 0, ["cat/pipe.png"], n_samples=6,
                problems={"unreadable_image": 1})


@case
def case_if_decompression_bomb(t):
    image_folder(t / "f")
    (t / "f/cat/bomb.png").write_bytes(bomb_png())
    return Case(inspect(t / "f", "imagefolder", "--check-images"), 0, ["cat/bomb.png"], n_samples=6,
                problems={"decompression_bomb": 1})


@case
def case_if_large_pixel_count(t):
    image_folder(t / "f")
    (t / "f/cat/huge.png").write_bytes(bomb_png(side=10_000))  # 100 M pixels: over PIL's limit, under 2x
    return Case(inspect(t / "f", "imagefolder", "--check-images"), 0, ["cat/huge.png"], n_samples=6,
                problems={"decompression_bomb": 1})


@case
def case_if_decompression_bomb_audit_on_bad_error(t):
    image_folder(t / "f")
    (t / "f/cat/bomb.png").write_bytes(bomb_png())
    return Case(["audit", "--dataset", "imagefolder", "--root", str(t / "f"), "--out", str(t / "run"), "--on-bad", "error"],
                2, ["cat/bomb.png", "decompression_bomb"], no_stages=t / "run")


@case
def case_if_decompression_bomb_pretrain_skips_it(t):
    image_folder(t / "f")
    (t / "f/cat/bomb.png").write_bytes(bomb_png())

    def after():  # reported by sample id, left out, and the run went on to train
        problems = pd.read_parquet(t / "run/problems.parquet").set_index("sample_id")
        assert problems.loc["cat/bomb.png", "kind"] == "decompression_bomb"
        assert problems.loc["cat/bomb.png", "action"] == "skipped"
        assert len(pd.read_parquet(t / "run/manifest.parquet")) == 6
        assert (t / "run/checkpoints/backbone.pt").exists()
    return Case(["pretrain", "--dataset", "imagefolder", "--root", str(t / "f"), "--out", str(t / "run"),
                 "--epochs", "1", "--backbone", "tiny_cnn", "--device", "cpu"], 0, [], after=after)


@case
def case_if_empty_class_folder(t):
    image_folder(t / "f", classes=("ant", "cat"))
    (t / "f/zebra").mkdir()
    return Case(inspect(t / "f", "imagefolder"), 0, ["zebra"], n_samples=6, n_classes=3, problems={},
                notes={"empty_class": 1})


@case
def case_if_single_class_audit(t):
    image_folder(t / "f", classes=("cat",), per_class=5)
    return Case(["audit", "--dataset", "imagefolder", "--root", str(t / "f"), "--out", str(t / "run")], 2,
                ["same label", "cat"], no_stages=t / "run")


@case
def case_if_all_images_broken_audit(t):
    for c in ("cat", "dog"):
        (t / "f" / c).mkdir(parents=True)
        for i in range(3):
            (t / "f" / c / f"{i}.png").write_bytes(b"garbage" * 10)
    return Case(["audit", "--dataset", "imagefolder", "--root", str(t / "f"), "--out", str(t / "run")], 2,
                ["no training samples", "unreadable_image", ".png"], no_stages=t / "run")


@case
def case_if_no_class_folders(t):
    (t / "f").mkdir()
    (t / "f/a.png").write_bytes(image_bytes())
    return Case(inspect(t / "f", "imagefolder"), 2, [str(t / "f"), "no class folders"])


@case
def case_if_root_missing(t):
    return Case(inspect(t / "nope", "imagefolder"), 2, [str(t / "nope")])


@case
def case_if_root_is_a_file(t):
    (t / "file.png").write_bytes(image_bytes())
    return Case(inspect(t / "file.png", "imagefolder"), 2, ["file.png", "not a directory"])


@case
def case_if_unknown_class_in_val(t):
    image_folder(t / "f/train")
    image_folder(t / "f/val", classes=("cat", "bird"), per_class=1)
    return Case(inspect(t / "f", "imagefolder"), 0, ["val/bird/0.png"], n_samples=6, problems={"unknown_class": 1})


# --- CSV manifests ---------------------------------------------------------------------------------
def _rows(labels, prefix="img"):
    return [{"path": f"{prefix}/{i}.png", "label": lab} for i, lab in enumerate(labels)]


@case
def case_csv_label_typo(t):
    m = csv_table(t / "c", _rows(["cat"] * 12 + ["dog"] * 12 + ["catt"]))
    return Case(inspect(m, "csv"), 0, ["catt", "img/24.png", "typo of class 'cat'"], n_samples=24, n_classes=2,
                problems={"unknown_class": 1}, notes={"inferred_classes": 1})


@case
def case_csv_label_minus_one(t):
    m = csv_table(t / "c", _rows([0, 1] * 5 + [-1]))
    return Case(inspect(m, "csv"), 0, ["img/10.png", "label -1"], n_samples=10, n_classes=2,
                problems={"label_out_of_range": 1})


@case
def case_csv_label_99(t):
    m = csv_table(t / "c", _rows(list(range(10)) * 3 + [99]))
    return Case(inspect(m, "csv"), 0, ["img/30.png", "99"], n_samples=30, n_classes=10,
                problems={"label_out_of_range": 1})


@case
def case_csv_label_huge_number(t):
    m = csv_table(t / "c", _rows([0, 1] * 4 + [1e30]))
    return Case(inspect(m, "csv"), 0, ["img/8.png"], n_samples=8, n_classes=2, problems={"label_out_of_range": 1})


@case
def case_csv_label_fractional(t):
    m = csv_table(t / "c", _rows([0, 1] * 4 + [1.5]))
    return Case(inspect(m, "csv"), 0, ["img/8.png", "1.5"], n_samples=8, problems={"label_out_of_range": 1})


@case
def case_csv_label_nan(t):
    rows = _rows(["cat", "dog"] * 4)
    rows.append({"path": "img/8.png", "label": None})
    m = csv_table(t / "c", rows)
    return Case(inspect(m, "csv"), 0, ["img/8.png"], n_samples=8, problems={"missing_label": 1})


@case
def case_csv_unknown_name_with_classes_txt(t):
    m = csv_table(t / "c", _rows(["cat", "dog"] * 4 + ["zebra"]), classes=["cat", "dog"])
    return Case(inspect(m, "csv"), 0, ["zebra", "img/8.png"], n_samples=8, n_classes=2, problems={"unknown_class": 1})


@case
def case_csv_index_outside_classes_txt(t):
    m = csv_table(t / "c", _rows([0, 1] * 4 + [7]), classes=["cat", "dog"])
    return Case(inspect(m, "csv"), 0, ["img/8.png", "label 7"], n_samples=8, n_classes=2,
                problems={"label_out_of_range": 1})


@case
def case_csv_header_only_inspect(t):
    (t / "c").mkdir()
    (t / "c/m.csv").write_text("path,label\n")
    return Case(inspect(t / "c/m.csv", "csv"), 0, [], n_samples=0, problems={})


@case
def case_csv_header_only_audit(t):
    (t / "c").mkdir()
    (t / "c/m.csv").write_text("path,label\n")
    return Case(["audit", "--dataset", "csv", "--root", str(t / "c/m.csv"), "--out", str(t / "run")], 2,
                ["no training samples", str(t / "c")], no_stages=t / "run")


@case
def case_csv_empty_file(t):
    (t / "c").mkdir()
    (t / "c/m.csv").write_bytes(b"")
    return Case(inspect(t / "c/m.csv", "csv"), 2, ["m.csv"])


@case
def case_csv_binary_garbage(t):
    (t / "c").mkdir()
    (t / "c/m.csv").write_bytes(bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)))
    return Case(inspect(t / "c/m.csv", "csv"), 2, ["m.csv"])


@case
def case_csv_missing_column(t):
    (t / "c").mkdir()
    pd.DataFrame({"file": ["a.png"], "label": [0]}).to_csv(t / "c/m.csv", index=False)
    return Case(inspect(t / "c/m.csv", "csv"), 2, ["m.csv", "path"])


@case
def case_csv_dotdot_path(t):
    rows = _rows(["cat", "dog"] * 3) + [{"path": "../outside.png", "label": "cat"}]
    (t / "outside.png").write_bytes(image_bytes())
    m = csv_table(t / "c", rows)
    return Case(inspect(m, "csv"), 0, ["../outside.png"], n_samples=6, problems={"path_escapes_root": 1})


@case
def case_csv_absolute_path(t):
    (t / "abs.png").write_bytes(image_bytes())
    m = csv_table(t / "c", _rows(["cat", "dog"] * 3) + [{"path": str(t / "abs.png"), "label": "dog"}])
    return Case(inspect(m, "csv"), 0, [str(t / "abs.png")], n_samples=6, problems={"path_escapes_root": 1})


@case
def case_csv_duplicate_id(t):
    rows = _rows(["cat", "dog"] * 3)
    for i, r in enumerate(rows):
        r["sample_id"] = f"s{i}"
    rows[5]["sample_id"] = "s0"
    m = csv_table(t / "c", rows)
    return Case(inspect(m, "csv"), 0, ["s0"], n_samples=5, problems={"duplicate_id": 1})


@case
def case_csv_missing_file(t):
    rows = _rows(["cat", "dog"] * 3) + [{"path": "img/gone.png", "label": "cat", "_make": False}]
    m = csv_table(t / "c", rows)
    return Case(inspect(m, "csv"), 0, ["img/gone.png"], n_samples=6, problems={"missing_file": 1})


@case
def case_csv_bad_split(t):
    rows = _rows(["cat", "dog"] * 3)
    rows[2]["split"] = "holdout"
    m = csv_table(t / "c", rows)
    return Case(inspect(m, "csv"), 0, ["img/2.png", "holdout"], n_samples=5, problems={"bad_split": 1})


@case
def case_csv_root_is_a_directory(t):
    (t / "c").mkdir()
    return Case(inspect(t / "c", "csv"), 2, [str(t / "c")])


@case
def case_csv_classes_txt_lists_a_name_twice(t):
    m = csv_table(t / "c", _rows(["cat", "dog"]), classes=["cat", "dog", "cat"])
    return Case(inspect(m, "csv"), 2, ["classes.txt", "'cat'"])


@case
def case_csv_labels_outside_class_list_audit_keep(t):
    m = csv_table(t / "c", _rows([0, 1] * 4 + [5]), classes=["cat", "dog"])
    return Case(["audit", "--dataset", "csv", "--root", str(m), "--out", str(t / "run"), "--on-bad", "keep"], 2,
                ["img/8.png", "no usable label"], no_stages=t / "run")


@case
def case_csv_minus_one_audit_keep(t):
    m = csv_table(t / "c", _rows([0, 1] * 4 + [-1]))
    return Case(["audit", "--dataset", "csv", "--root", str(m), "--out", str(t / "run"), "--on-bad", "keep"], 2,
                ["img/8.png", "label -1"], no_stages=t / "run")


@case
def case_csv_bad_label_on_bad_error(t):
    m = csv_table(t / "c", _rows(["cat", "dog"] * 4 + ["zebra"]), classes=["cat", "dog"])
    return Case(inspect(m, "csv", "--on-bad", "error"), 2, ["img/8.png", "zebra"])


# --- CIFAR pickles -----------------------------------------------------------------------------------
@case
def case_cifar_reduce_runs_os_system(t):
    folder = write_cifar10(t / "cifar")
    marker = t / "pwned"
    (folder / "data_batch_1").write_bytes(evil_pickle(marker))
    return Case(inspect(t / "cifar", "cifar10"), 2, ["data_batch_1", "posix.system"], marker=marker)


@case
def case_cifar_meta_reduce(t):
    folder = write_cifar10(t / "cifar")
    marker = t / "pwned"
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": Evil(marker)}, protocol=4))
    return Case(inspect(t / "cifar", "cifar10"), 2, ["batches.meta", "refused"], marker=marker)


@case
def case_cifar_huge_int_label(t):
    folder = write_cifar10(t / "cifar")
    data = np.zeros((4, 3072), np.uint8)
    (folder / "data_batch_2").write_bytes(pickle.dumps({"data": data, "labels": [0, 1, 10**40, 2]}, protocol=2))
    return Case(inspect(t / "cifar", "cifar10"), 2, ["data_batch_2", "labels"])


@case
def case_cifar_declares_17tb_bytearray(t):
    folder = write_cifar10(t / "cifar")
    (folder / "data_batch_3").write_bytes(b"\x80\x05\x96" + struct.pack("<Q", 17 * 2**40) + b"abc")
    return Case(inspect(t / "cifar", "cifar10"), 2, ["data_batch_3", "too large"])


@case
def case_cifar_truncated_pickle(t):
    folder = write_cifar10(t / "cifar")
    raw = (folder / "data_batch_4").read_bytes()
    (folder / "data_batch_4").write_bytes(raw[: len(raw) // 3])
    return Case(inspect(t / "cifar", "cifar10"), 2, ["data_batch_4", "not a readable pickle"])


@case
def case_cifar_wrong_data_shape(t):
    folder = write_cifar10(t / "cifar")
    (folder / "data_batch_5").write_bytes(pickle.dumps({"data": np.zeros((4, 100), np.uint8), "labels": [0] * 4}))
    return Case(inspect(t / "cifar", "cifar10"), 2, ["data_batch_5", "3072"])


@case
def case_cifar_missing_batch(t):
    folder = write_cifar10(t / "cifar")
    (folder / "test_batch").unlink()
    return Case(inspect(t / "cifar", "cifar10"), 2, ["test_batch"])


@case
def case_cifar10n_crafted_label_file(t):
    import torch

    write_cifar10(t / "cifar")
    marker = t / "pwned"
    torch.save({"clean_label": Evil(marker)}, t / "cifar" / "CIFAR-10_human.pt")
    return Case(inspect(t / "cifar", "cifar10n"), 2, ["CIFAR-10_human.pt", "refused"], marker=marker)


# --- --embeddings files (audit on 60 uncorrupted digits: the check runs before any stage) ----------------
def _emb_audit(t: Path, path: Path, *extra: str) -> list[str]:
    return ["audit", "--limit", "60", "--imbalance", "none", "--noise", "none", "--embeddings", str(path),
            "--out", str(t / "run"), *QUICK_AUDIT, *extra]


@case
def case_emb_missing_file(t):
    return Case(_emb_audit(t, t / "nope.npy"), 2, ["nope.npy", "does not exist"], no_stages=t / "run")


@case
def case_emb_wrong_rows(t):
    np.save(t / "e.npy", np.ones((59, 8), np.float32))
    return Case(_emb_audit(t, t / "e.npy"), 2, ["e.npy", "59 rows", "60 training samples"], no_stages=t / "run")


@case
def case_emb_nan(t):
    x = np.ones((60, 8), np.float32)
    x[7, 3] = np.nan
    np.save(t / "e.npy", x)
    return Case(_emb_audit(t, t / "e.npy"), 2, ["e.npy", "row 7"], no_stages=t / "run")


@case
def case_emb_float16_overflow(t):
    x = np.ones((60, 8), np.float32)
    x[3, 0] = 1e6
    np.save(t / "e.npy", x)
    return Case(_emb_audit(t, t / "e.npy"), 2, ["e.npy", "row 3", "float16"], no_stages=t / "run")


@case
def case_emb_object_dtype(t):
    marker = t / "pwned"
    arr = np.empty((60, 1), dtype=object)
    arr[0, 0] = Evil(marker)
    np.save(t / "e.npy", arr, allow_pickle=True)
    return Case(_emb_audit(t, t / "e.npy"), 2, ["e.npy", "never unpickles"], marker=marker, no_stages=t / "run")


@case
def case_emb_one_dimensional(t):
    np.save(t / "e.npy", np.ones(60, np.float32))
    return Case(_emb_audit(t, t / "e.npy"), 2, ["e.npy", "2-D"], no_stages=t / "run")


@case
def case_emb_three_dimensional(t):
    np.save(t / "e.npy", np.ones((60, 2, 4), np.float32))
    return Case(_emb_audit(t, t / "e.npy"), 2, ["e.npy", "2-D"], no_stages=t / "run")


@case
def case_emb_complex(t):
    np.save(t / "e.npy", np.ones((60, 4), np.complex64))
    return Case(_emb_audit(t, t / "e.npy"), 2, ["e.npy", "complex"], no_stages=t / "run")


@case
def case_emb_npz_named_npy(t):
    with open(t / "e.npy", "wb") as f:
        np.savez(f, x=np.ones((60, 4)))
    return Case(_emb_audit(t, t / "e.npy"), 2, ["e.npy", ".npz"], no_stages=t / "run")


@case
def case_emb_unsupported_suffix(t):
    (t / "e.txt").write_text("1 2 3")
    return Case(_emb_audit(t, t / "e.txt"), 2, ["e.txt", "unsupported format"], no_stages=t / "run")


@case
def case_emb_parquet_with_strings(t):
    pd.DataFrame({"a": ["x"] * 60, "b": np.ones(60)}).to_parquet(t / "e.parquet")
    return Case(_emb_audit(t, t / "e.parquet"), 2, ["e.parquet", "non-numeric"], no_stages=t / "run")


@case
def case_emb_valid_file_audit_runs(t):
    x = np.random.default_rng(0).normal(size=(60, 8)).astype(np.float32)
    np.save(t / "e.npy", x)

    def after():
        assert (t / "run" / "audit.parquet").exists()
        assert len(pd.read_parquet(t / "run" / "audit.parquet")) == 60
    return Case(_emb_audit(t, t / "e.npy"), 0, [], after=after)


# --- options ------------------------------------------------------------------------------------------
@case
def case_opt_limit_zero(t):
    return Case(["inspect", "--limit", "0"], 2, ["--limit"])


@case
def case_opt_limit_negative(t):
    return Case(["audit", "--limit", "-5", "--out", str(t / "run")], 2, ["--limit", "-5"], no_stages=t / "run")


@case
def case_opt_limit_zero_from_recipe(t):
    return Case(["audit", "--set", "dataset.limit=0", "--out", str(t / "run")], 2, ["--limit", "0"],
                no_stages=t / "run")


@case
def case_opt_seed_negative(t):
    return Case(["audit", "--seed", "-1", "--out", str(t / "run")], 2, ["--seed"], no_stages=t / "run")


@case
def case_opt_noise_rate_above_one(t):
    return Case(["inspect", "--noise", "uniform", "--noise-rate", "1.5"], 2, ["--noise-rate", "1.5"])


@case
def case_opt_unknown_dataset(t):
    return Case(["inspect", "--dataset", "nosuch"], 2, ["nosuch"])


@case
def case_opt_unknown_recipe_key(t):
    return Case(["audit", "--set", "heads.nosuchkey=1", "--out", str(t / "run")], 2, ["nosuchkey"],
                no_stages=t / "run")


@case
def case_if_out_inside_the_root(t):
    folder = image_folder(t / "f")
    return Case(["audit", "--dataset", "imagefolder", "--root", str(folder), "--out", str(folder / "runs" / "r")], 2,
                ["lies inside the dataset root"], no_stages=folder / "runs" / "r",
                after=lambda: _assert_missing(folder / "runs"))


@case
def case_csv_nul_byte_in_a_path(t):
    rows = _rows([0, 1] * 3)
    m = csv_table(t / "c", rows)
    m.write_text(m.read_text().replace("img/5.png", "img/5\x00.png"))
    return Case(inspect(m, "csv"), 0, ["NUL character"], n_samples=5, problems={"unreadable_image": 1})


def _assert_missing(p: Path) -> None:
    assert not p.exists(), f"{p} was created"


def _set(t: Path, *values: str) -> list[str]:
    return ["audit", "--limit", "60", "--out", str(t / "run"), *[a for v in values for a in ("--set", v)]]


@case
def case_set_string_for_an_integer(t):
    return Case(_set(t, 'heads.epochs="abc"'), 2, ["heads.epochs", "expected an integer", "'abc'"], no_stages=t / "run")


@case
def case_set_bare_word_for_an_integer(t):
    return Case(_set(t, "evidence.k=abc"), 2, ["evidence.k", "expected an integer"], no_stages=t / "run")


@case
def case_set_string_for_a_number(t):
    return Case(_set(t, 'hygiene.near_duplicate_similarity="high"'), 2,
                ["hygiene.near_duplicate_similarity", "expected a number"], no_stages=t / "run")


@case
def case_set_infinite_number(t):
    return Case(_set(t, "hygiene.property_z=inf"), 2, ["hygiene.property_z", "finite"], no_stages=t / "run")


@case
def case_set_float_for_rounds(t):
    return Case(_set(t, "audit.rounds=1e9"), 2, ["audit.rounds", "expected an integer"], no_stages=t / "run")


@case
def case_set_rounds_out_of_bounds(t):
    return Case(_set(t, "audit.rounds=1000000000"), 2, ["audit.rounds", "0..20"], no_stages=t / "run")


@case
def case_set_unknown_head(t):
    return Case(_set(t, 'heads.heads=["x"]'), 2, ["unknown head 'x'"], no_stages=t / "run")


@case
def case_set_unknown_teacher(t):
    return Case(_set(t, 'heads.semi_teacher="nobody"'), 2, ["unknown head 'nobody'"], no_stages=t / "run")


@case
def case_set_wrong_type_in_gdw_table(t):
    return Case(_set(t, 'heads.gdw={epochs="many"}'), 2, ["heads.gdw.epochs", "expected an integer"],
                no_stages=t / "run")


@case
def case_set_unknown_ssl_method(t):
    return Case(_set(t, 'ssl.method="nope"'), 2, ["method", "nope"], no_stages=t / "run")


@case
def case_subset_object_dtype(t):
    marker = t / "pwned"
    arr = np.empty(3, dtype=object)
    arr[0] = Evil(marker)
    np.save(t / "idx.npy", arr, allow_pickle=True)
    return Case(["inspect", "--subset-indices", str(t / "idx.npy")], 2, ["idx.npy", "Python objects"], marker=marker)


@case
def case_subset_out_of_range(t):
    np.save(t / "idx.npy", np.array([0, 5, 99999]))
    return Case(["inspect", "--subset-indices", str(t / "idx.npy")], 2, ["idx.npy", "99999"])


@case
def case_subset_fractional(t):
    np.save(t / "idx.npy", np.array([0.0, 1.5]))
    return Case(["inspect", "--subset-indices", str(t / "idx.npy")], 2, ["idx.npy", "integer"])


@case
def case_subset_missing_file(t):
    return Case(["inspect", "--subset-indices", str(t / "idx.npy")], 2, ["idx.npy", "does not exist"])


@case
def case_subset_repeated(t):
    np.save(t / "idx.npy", np.array([1, 2, 2]))
    return Case(["inspect", "--subset-indices", str(t / "idx.npy")], 2, ["idx.npy", "repeated"])


# --- exports ------------------------------------------------------------------------------------------
def _fixture_run(t: Path) -> Path:
    from tests.fixtures_run import write_fixture_run

    return write_fixture_run(t / "run")


@case
def case_export_over_the_runs_audit_table(t):
    run = _fixture_run(t)
    before = (run / "audit.parquet").read_bytes()

    def after():
        assert (run / "audit.parquet").read_bytes() == before, "the run's own audit table is intact"
        assert main(["export", str(run), "--policy", "clean", "--out", str(t / "ok.parquet")]) == 0
    return Case(["export", str(run), "--policy", "clean", "--out", str(run / "audit.parquet")], 2,
                ["audit.parquet", "inside the run directory"], after=after)


@case
def case_export_into_run_dir_weights_collision(t):
    run = _fixture_run(t)
    return Case(["export", str(run), "--policy", "clean", "--out", str(run / "embeddings.parquet")], 2,
                ["embeddings.parquet", "inside the run directory"])


@case
def case_export_out_is_a_directory(t):
    run = _fixture_run(t)
    (t / "outdir").mkdir()
    return Case(["export", str(run), "--policy", "clean", "--out", str(t / "outdir")], 2, ["outdir", "is a directory"])


@case
def case_export_out_escapes_base(t):
    run = _fixture_run(t)
    (t / "base").mkdir()
    return Case(["export", str(run), "--policy", "clean", "--base-dir", str(t / "base"), "--out", "../x.parquet"], 2,
                ["../x.parquet"])


@case
def case_export_run_without_audit(t):
    run = _fixture_run(t)
    (run / "audit.parquet").unlink()
    return Case(["export", str(run), "--policy", "clean", "--out", str(t / "x.parquet")], 2, ["audit.parquet"])


@case
def case_export_truncated_audit_table(t):
    run = _fixture_run(t)
    raw = (run / "audit.parquet").read_bytes()
    (run / "audit.parquet").write_bytes(raw[: len(raw) // 2])
    return Case(["export", str(run), "--policy", "clean", "--out", str(t / "x.parquet")], 2, ["audit.parquet"])


@case
def case_export_image_changed_since_audit(t):
    from curator.data.options import DatasetOptions
    from curator.rundir import release_writer_lock
    from pipelines.prepare import prepare_run

    image_folder(t / "f")
    run, ds = prepare_run(t / "run", DatasetOptions(dataset="imagefolder", root=str(t / "f")))
    release_writer_lock(run.path)
    train = ds.train
    pd.DataFrame({"sample_id": train["sample_id"], "label": train["label"], "label_issue_score": 0.1,
                  "is_label_issue": False, "suggested_label": train["label"], "suggested_label_confidence": 0.9}
                 ).to_parquet(run / "audit.parquet")
    (t / "f/cat/1.png").write_bytes(image_bytes(seed=123, size=12))  # replaced after the audit

    def after():
        assert not (t / "x.parquet").exists()
        args = ["export", str(run.path), "--policy", "clean", "--out", str(t / "y.parquet"), "--allow-changed"]
        assert main(args) == 0 and (t / "y.parquet").exists()
    return Case(["export", str(run.path), "--policy", "clean", "--out", str(t / "x.parquet")], 2,
                ["cat/1.png", "changed"], after=after)


@case
def case_explore_not_a_run(t):
    (t / "d").mkdir()
    return Case(["explore", str(t / "d")], 2, [str(t / "d"), "manifest.parquet"])


# -------------------------------------------------------------------------------------------------------
def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse rejects an option value
        code = exc.code if isinstance(exc.code, int) else 2
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_catalogue_is_large_enough():
    assert len(CASES) >= 40


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input(name, tmp_path, capsys):
    setup_logging()  # builders that call the library log too: to this test's captured stderr
    c = CASES[name](tmp_path)
    code, out, err = run_cli(c.argv, capsys)
    text = out + err
    assert code == c.code, f"exit {code}, expected {c.code}\n{text[-3000:]}"
    assert "Traceback" not in text, text[-3000:]
    for n in c.names:
        assert n in text, f"{n!r} not in the output:\n{text[-3000:]}"
    if c.code == 2:
        errors = [line for line in err.splitlines() if " ERROR " in line or line.startswith("curator: error")
                  or "error: argument" in line]
        assert len(errors) == 1, f"expected one error line, got:\n{err[-3000:]}"
    if c.code == 0 and "--json" in c.argv and c.argv[0] == "inspect":
        summary = json.loads(out)
        if c.n_samples is not None:
            assert summary["n_samples"] == c.n_samples
        if c.n_classes is not None:
            assert summary["n_classes"] == c.n_classes
        assert summary["problems"]["by_kind"] == c.problems
        for kind, n in c.notes.items():
            assert summary["notes"]["by_kind"].get(kind) == n, summary["notes"]
    if c.marker is not None:
        assert not c.marker.exists(), "a crafted file ran code"
    if c.no_stages is not None:
        stages = {p.stem for p in (c.no_stages / "stages").glob("*.json")} if (c.no_stages / "stages").exists() else set()
        assert not stages - {"check_images"}, f"expensive stages ran before the error: {stages}"
        assert not (c.no_stages / "checkpoints").exists()
    if c.after is not None:
        c.after()
