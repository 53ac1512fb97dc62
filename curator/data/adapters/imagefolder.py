"""An image folder: ``root/<class>/<file>`` (torchvision's ImageFolder convention).

Class = folder name; classes are sorted by name and numbered 0..C-1. Optional top-level
``train/``, ``val/``, ``test/`` folders hold one class tree each (classes come from ``train/``;
a val/test class folder unknown to train is reported). Image extensions: jpg, jpeg, png, bmp,
webp, tif, tiff (any case). Other files, hidden files and folders (``.name``) and symlinked
folders (not followed) are noted; empty class folders are noted. Bad samples, reported by id:
zero-byte files, dangling symbolic links (``missing_file``), symbolic links whose target lies
outside the root (``path_escapes_root``) and entries that are not regular files (a FIFO or device
would block or mislead a reader). Sample id = relative path (posix).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from curator.data.images import FileImages
from curator.data.manifest import Dataset, make_manifest
from curator.data.options import DatasetOptions
from curator.data.problems import DataError, ProblemReport
from curator.data.adapters.spec import AdapterSpec
from curator.data.validate import file_problem, note_empty_classes

LOG = logging.getLogger(__name__)

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
SPLIT_DIRS = ("train", "val", "test")


def _class_dirs(folder: Path, report: ProblemReport | None = None, root: Path | None = None) -> list[str]:
    names = []
    for e in os.scandir(folder):
        if not e.is_dir():
            continue
        if e.name.startswith("."):
            if report is not None and root is not None:
                report.note("ignored_file", "hidden folder (name starts with '.'): not a class",
                            (Path(e.path).relative_to(root)).as_posix())
            continue
        names.append(e.name)
    return sorted(names)


def _walk(class_dir: Path, root: Path, report: ProblemReport) -> list[tuple[str, tuple[str, str] | None]]:
    """(relative path, problem or None) of the image files under `class_dir` (recursive, sorted)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(class_dir):
        for d in list(dirnames):
            sub = Path(dirpath) / d
            if d.startswith("."):
                report.note("ignored_file", "hidden folder (name starts with '.'): not read", sub.relative_to(root).as_posix())
                dirnames.remove(d)
            elif sub.is_symlink():
                report.note("ignored_file", "symbolically linked folder: not followed", sub.relative_to(root).as_posix())
        dirnames.sort()
        for name in sorted(filenames):
            full = Path(dirpath) / name
            rel = full.relative_to(root).as_posix()
            if name.startswith("."):
                report.note("ignored_file", "hidden file (name starts with '.'): not read", rel)
                continue
            if full.suffix.lower() not in IMAGE_EXTENSIONS:
                report.note("ignored_file", f"not an image extension ({', '.join(sorted(IMAGE_EXTENSIONS))})", rel)
                continue
            out.append((rel, file_problem(root, rel)))
    return out


def load(options: DatasetOptions, report: ProblemReport) -> Dataset:
    root = Path(options.root)
    if not root.is_dir():
        raise DataError(f"imagefolder root {str(root)!r} is not a directory")
    top = _class_dirs(root)
    has_splits = "train" in top and all(d in SPLIT_DIRS for d in top)
    split_roots = [(s, root / s) for s in SPLIT_DIRS if s in top] if has_splits else [("train", root)]
    class_names = _class_dirs(split_roots[0][1], report, root)
    if not class_names:
        raise DataError(f"imagefolder root {str(split_roots[0][1])!r} has no class folders; expected <class>/<image files>")
    index = {n: i for i, n in enumerate(class_names)}
    for folder in dict.fromkeys([root] + [f for _, f in split_roots]):
        for e in sorted(os.scandir(folder), key=lambda e: e.name):
            if not e.is_dir():
                report.note("ignored_file", "file outside any class folder: not read",
                            Path(e.path).relative_to(root).as_posix())

    relpaths: list[str] = []
    ids, labels, splits = [], [], []
    for split, folder in split_roots:
        for cls in _class_dirs(folder, None if folder == split_roots[0][1] else report, root):
            if cls not in index:
                for rel, _ in _walk(folder / cls, root, report):
                    report.add(rel, rel, "unknown_class", f"class folder {cls!r} in {split}/ is not a training class")
                continue
            for rel, problem in _walk(folder / cls, root, report):
                if problem is not None and not report.add(rel, rel, *problem):
                    continue
                relpaths.append(rel)
                ids.append(rel)
                labels.append(index[cls])
                splits.append(split)
    manifest = make_manifest(ids, np.asarray(labels, dtype=np.int64), source=relpaths,
                             split=np.asarray(splits, dtype=object))
    note_empty_classes(manifest, class_names, report)
    LOG.info("imagefolder %s: %d images in %d classes", root, len(manifest), len(class_names))
    return Dataset("imagefolder", class_names, manifest, FileImages(root, relpaths), root, report,
                   {"splits_from_folders": has_splits})


ADAPTER_SPECS = [
    AdapterSpec("imagefolder", load, "any folder of images, one sub-folder per class",
                "<class>/<image> (jpg, jpeg, png, bmp, webp, tif), optionally under train/, val/, test/"),
]
