"""Bad-input checks shared by the adapters, and the full image check behind `inspect --check-images`.

Cheap checks (every adapter, at load time; SPEC §3):
- `check_labels`: labels / true labels out of range;
- `dedupe_ids`: duplicate sample ids (later occurrences skipped, or renamed ``id#2`` under ``keep``);
- `note_empty_classes`: classes without a training sample (a note, not a bad sample);
- `check_paths`: relative paths that escape the root, missing files and zero-byte files (one ``stat``).

Expensive check (`check_images`): decodes every image through ``ds.images`` and reports unreadable,
truncated and zero-byte files, and images converted to RGB (CMYK, 16-bit, alpha, grayscale). The same
pass can measure every image's properties and content hash for the hygiene checks
(`curator.data.properties`), so no image is decoded twice for them.
Each finding goes to the `ProblemReport` with the sample id and the reason; whether the sample
stays is the report's policy (``skip`` / ``keep`` / ``error``).
"""
from __future__ import annotations

import logging
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from curator.data.images import ArrayImages, EncodedImages, FileImages, ImageError, ImageSource, decode_image_bytes
from curator.data.manifest import UNKNOWN, Dataset
from curator.data.problems import ProblemReport
from curator.data.properties import Measurer, measure_array, prepare_image

LOG = logging.getLogger(__name__)


def _keep_mask(df: pd.DataFrame, bad_rows: np.ndarray, report: ProblemReport, kind: str, reasons: Sequence[str]) -> np.ndarray:
    keep = np.ones(len(df), dtype=bool)
    ids = df["sample_id"].to_numpy()
    sources = df["source"].to_numpy()
    for row, reason in zip(bad_rows, reasons):
        keep[row] = report.add(str(ids[row]), str(sources[row]), kind, reason)
    return keep


def check_labels(df: pd.DataFrame, n_classes: int, report: ProblemReport, *,
                 allow_unlabeled: bool | np.ndarray = False) -> pd.DataFrame:
    """Report rows whose ``label`` (or known ``true_label``) is outside 0..C-1; return the kept rows.

    `allow_unlabeled` lets label -1 (`UNLABELED`) through: everywhere (True) or on the rows of a
    boolean mask (e.g. rows whose missing label was already reported and kept).
    """
    label = df["label"].to_numpy()
    allowed = np.broadcast_to(np.asarray(allow_unlabeled, dtype=bool), label.shape) & (label == UNKNOWN)
    bad = np.flatnonzero(((label < 0) & ~allowed) | (label >= n_classes))
    keep = _keep_mask(df, bad, report, "label_out_of_range", [_label_reason("label", int(label[i]), n_classes) for i in bad])
    true = df["true_label"].to_numpy()
    bad_t = np.flatnonzero(((true < 0) & (true != UNKNOWN)) | (true >= n_classes))
    keep &= _keep_mask(df, bad_t, report, "true_label_out_of_range",
                       [_label_reason("true label", int(true[i]), n_classes) for i in bad_t])
    return df[keep].reset_index(drop=True) if not keep.all() else df


def _label_reason(which: str, value: int, n_classes: int) -> str:
    if value == -1 and which == "label":
        return (f"label -1 is not a class (classes are 0..{n_classes - 1}); curator has no 'unlabeled' marker: "
                "give the sample its label or remove it")
    return f"{which} {value} is outside 0..{n_classes - 1}"


def dedupe_ids(df: pd.DataFrame, report: ProblemReport) -> pd.DataFrame:
    """Report repeated ``sample_id`` values; skip the later rows, or rename them ``id#k`` when kept."""
    dup = df["sample_id"].duplicated(keep="first").to_numpy()
    if not dup.any():
        return df
    df = df.copy()
    ids = df["sample_id"].to_numpy(dtype=object)
    keep = np.ones(len(df), dtype=bool)
    seen: dict[str, int] = {}
    taken = set(ids.tolist())
    for row in np.flatnonzero(dup):
        sid = str(ids[row])
        kept = report.add(sid, str(df["source"].iat[row]), "duplicate_id",
                          f"sample id {sid!r} appears more than once (row {row})")
        keep[row] = kept
        if kept:
            k = seen.get(sid, 1)
            while f"{sid}#{k + 1}" in taken:
                k += 1
            seen[sid] = k + 1
            ids[row] = f"{sid}#{k + 1}"
            taken.add(ids[row])
    df["sample_id"] = ids.astype(str)
    return df[keep].reset_index(drop=True)


def note_empty_classes(df: pd.DataFrame, class_names: Sequence[str], report: ProblemReport, *, split: str = "train") -> list[int]:
    """Note every class with no sample labelled with it in `split`; return their indices."""
    labels = df.loc[df["split"] == split, "label"].to_numpy()
    counts = np.bincount(labels[labels >= 0], minlength=len(class_names))
    empty = [int(c) for c in np.flatnonzero(counts[: len(class_names)] == 0)]
    for c in empty:
        report.note("empty_class", f"class {c} ({class_names[c]!r}) has no {split} samples")
    return empty


def path_escapes(relative: str) -> bool:
    """True for absolute paths, ``~`` paths and paths whose normalised form climbs above the root."""
    if not relative or os.path.isabs(relative) or relative.startswith("~"):
        return True
    norm = os.path.normpath(relative)
    return norm == ".." or norm.startswith(".." + os.sep) or norm.startswith("../")


def file_problem(root: Path, rel: str) -> tuple[str, str] | None:
    """(kind, reason) if ``root/rel`` cannot be a sample's image file, else None (one ``lstat``).

    Missing files, dangling symbolic links, links leading outside `root`, entries that are not
    regular files (a FIFO would block a reader) and zero-byte files.
    """
    if "\x00" in rel:   # no file system allows it; os.lstat would raise ValueError
        return "unreadable_image", f"path {rel!r} contains a NUL character"
    path = root / rel
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return "missing_file", f"file not found: {path}"
    except OSError as exc:
        return "unreadable_image", f"cannot stat {path}: {exc.strerror or exc}"
    if stat.S_ISLNK(st.st_mode):
        try:
            resolved = path.resolve(strict=True)
            st = os.stat(path)
        except (OSError, RuntimeError):
            return "missing_file", f"dangling symbolic link {str(path)!r}: the file it points to does not exist"
        root_resolved = root.resolve()
        if not resolved.is_relative_to(root_resolved):
            return "path_escapes_root", f"symbolic link {rel!r} leads to {str(resolved)!r}, outside the dataset root {str(root)!r}"
    if not stat.S_ISREG(st.st_mode):
        return "unreadable_image", f"{str(path)!r} is not a regular file (a folder, FIFO, socket or device)"
    if st.st_size == 0:
        return "empty_file", f"zero-byte file: {path}"
    return None


def check_paths(df: pd.DataFrame, root: Path, relpaths: Sequence[str], report: ProblemReport, *, stat: bool = True,
                missing_ok: bool = False) -> pd.DataFrame:
    """Report paths escaping `root`, missing files and zero-byte files (row i uses ``relpaths[image_ref[i]]``).

    One ``os.stat`` per file when `stat` is true; images are not decoded here (see `check_images`).
    With `missing_ok` (the user brought embeddings, so the audit needs no pixels) image files that do not
    exist here are not bad samples: the rows are kept and one note summarises them ("N of M image files
    not found; thumbnails will be missing").
    """
    keep = np.ones(len(df), dtype=bool)
    ids = df["sample_id"].to_numpy()
    refs = df["image_ref"].to_numpy()
    rel_col = pd.Series([relpaths[r] for r in refs], dtype=object).astype(str)
    suspicious = (rel_col == "") | rel_col.str.startswith(("/", "~")) | rel_col.str.contains("..", regex=False)
    rows_to_check = range(len(df)) if stat else np.flatnonzero(suspicious.to_numpy())
    missing: list[str] = []
    for row in rows_to_check:
        rel = relpaths[refs[row]]
        if not rel:
            keep[row] = report.add(str(ids[row]), str(root), "missing_path", "no image path given")
            continue
        if path_escapes(rel):
            keep[row] = report.add(str(ids[row]), rel, "path_escapes_root",
                                   f"path {rel!r} is absolute or escapes the dataset root {str(root)!r}")
            continue
        if not stat:
            continue
        problem = file_problem(root, rel)
        if problem is not None and missing_ok and problem[0] == "missing_file":
            missing.append(rel)
        elif problem is not None:
            keep[row] = report.add(str(ids[row]), rel, *problem)
    if missing:
        examples = ", ".join(repr(m) for m in missing[:3]) + (", ..." if len(missing) > 3 else "")
        text = (f"{len(missing):,} of {len(df):,} image files not found under {str(root)!r} (e.g. {examples}); "
                "the rows are kept because embeddings were supplied (--embeddings), and thumbnails will be missing")
        LOG.warning("%s", text)
        report.note("images_not_found", text, source=str(root))
    return df[keep].reset_index(drop=True) if not keep.all() else df


_CONVERSION_KINDS = (("CMYK", "cmyk_image"), ("16-bit", "16bit_image"), ("alpha", "alpha_image"),
                     ("grayscale", "grayscale_image"), ("float", "float_image"),
                     ("EXIF orientation", "exif_rotated"))


def conversion_kind(note: str) -> str:
    """Map a conversion note of `curator.data.images.to_rgb_uint8` to a problem kind."""
    for needle, kind in _CONVERSION_KINDS:
        if needle in note:
            return kind
    return "converted_mode"


def _decode_one(images: ImageSource, ref: int, measure: bool = False) -> tuple[str | None, str | None, str | None, tuple | None]:
    """(error kind, error reason, conversion note, prepared image for `curator.data.properties.Measurer`
    or None) for image `ref`."""
    try:
        if isinstance(images, FileImages):
            pixels, note = images.read_with_note(ref)
        elif isinstance(images, EncodedImages):
            pixels, note = decode_image_bytes(images.raw(ref))
        else:
            pixels = images.read(ref)
            note = None
    except ImageError as exc:
        return exc.kind, exc.reason, None, None
    return None, None, note, (prepare_image(pixels) if measure else None)


def check_images(ds: Dataset, report: ProblemReport, *, refs: Sequence[int] | None = None,
                 workers: int | None = None, progress: bool = True, measure: Measurer | None = None) -> Dataset:
    """Decode every image (or the manifest rows at positions `refs`) and report what is wrong.

    Unreadable / truncated / zero-byte / missing images are bad samples (skipped or kept by the
    report's policy); converted modes (CMYK, 16-bit, alpha, grayscale) are reported with
    ``convertible=True`` and kept. Returns `ds` without the skipped samples. Decoding runs in a
    thread pool (PIL releases the GIL) with a progress bar on stderr.

    With `measure` (a `curator.data.properties.Measurer`), the same pass also takes every decodable
    image's properties and content hash (docs/hygiene.md); ``measure.frame()`` then holds them by sample id.
    """
    from tqdm.auto import tqdm

    m = ds.manifest
    rows = np.arange(len(m)) if refs is None else np.asarray(refs, dtype=np.int64)
    if isinstance(ds.images, ArrayImages):  # already decoded uint8 RGB in memory: nothing can fail
        if measure is not None:
            measure.add_frame(measure_array(ds.images.array, m["image_ref"].to_numpy()[rows],
                                            m["sample_id"].astype(str).to_numpy()[rows]))
        ds.info["images_checked"] = {"n_checked": int(len(rows)), "n_bad": 0, "n_converted": 0}
        return ds
    image_refs = m["image_ref"].to_numpy()[rows]
    keep = np.ones(len(m), dtype=bool)
    workers = workers or min(8, (os.cpu_count() or 1) + 2)
    n_converted = n_bad = 0
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = pool.map(lambda r: _decode_one(ds.images, int(r), measure is not None), image_refs, chunksize=64)
        bar = tqdm(results, total=len(rows), desc="checking images", unit="img", disable=not progress or None, leave=False)
        for row, (kind, reason, note, prepared) in zip(rows, bar):
            sid, src = str(m["sample_id"].iat[row]), str(m["source"].iat[row])
            if prepared is not None:
                measure.add(sid, prepared)
            if kind is not None:
                n_bad += 1
                keep[row] = report.add(sid, src, kind, reason or kind)
            elif note is not None:
                n_converted += 1
                report.add(sid, src, conversion_kind(note), note, convertible=True)
    LOG.info("checked %d images: %d bad, %d converted", len(rows), n_bad, n_converted)
    ds.info["images_checked"] = {"n_checked": int(len(rows)), "n_bad": n_bad, "n_converted": n_converted}
    if keep.all():
        return ds
    return ds.select(keep)
