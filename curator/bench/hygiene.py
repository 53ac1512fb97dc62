"""`curator bench hygiene`: planted hygiene problems in real photographs — how many each check finds, how many clean
images it flags, side by side with CleanVision on the same files, and what the checks cost (BENCHMARKS.md, "hygiene").

1. Base images: the first ``--n-train`` CIFAR-10 training and ``--n-test`` test images (``cifar10_jpeg.npz``, the
   stored JPEG bytes). `curator.bench.hygiene_plant.plant_folder` writes them as an image folder with
   train/ and test/ splits and plants ``--n-each`` samples of every problem (duplicates, duplicates with a flipped
   label, copies in test/, dark / light / blurred images at three severities, blanks, grayscale, odd sizes and
   aspect ratios, foreign images).
2. curator: the real stages on that folder — `pipelines.prepare.prepare_run` (the image pass, which measures the
   properties), then the pipeline's own wiring `pipelines.audit.score_stages`: the evidence, the hygiene stage,
   the signals and the audit (for duplicates with two labels), without heads. The embeddings
   are a training-free stand-in, ``--embedder thumbnails``: every image box-filtered to 16 x 16 RGB (768 numbers);
   self-supervised pre-training on a CPU would dominate the bench and its quality would vary with the budget. The
   outlier numbers are therefore those of the calibration on these embeddings, and the near-duplicate and near-leak
   candidates come from them (the pixels confirm them, as in every run with decoded images); docs/hygiene.md has the
   check on real SimSiam embeddings (CIFAR-10 train <-> test) and the same folder audited with the CPU defaults.
3. CleanVision (``pip install cleanvision``, the ``bench`` extra): `Imagelab` on the same folder with its default
   thresholds; its duplicate sets that span train/ and test/ count as leaks.
4. Cost: the image pass with and without the property measurement (`curator.data.validate.check_images`, best of
   ``--repeats``), the hygiene stage, and CleanVision's `find_issues`.

Per check: planted = samples the check should flag; recall = share of those it flags; false-flag rate = share of
the *clean* (unplanted) training images it flags — natural CIFAR images that really are grayscale or near-copies
of each other count against it; precision = planted hits / (planted hits + clean flags). Flags on images planted
with another problem are counted apart (``other_planted``: e.g. a blank image is also an outlier).
"""
from __future__ import annotations

import argparse
import io
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

LOG = logging.getLogger(__name__)
NAME = "hygiene"
HELP = "planted duplicates / leaks / dark / blurred / blank images: recall and false flags per check, vs CleanVision"
DEFAULT_SRC = "/work/shared/datasets/cifar10n"
QUALITY = ("dark", "light", "blurry", "low_information", "grayscale", "odd_size", "odd_aspect_ratio")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--src", default=DEFAULT_SRC, help="folder holding cifar10_jpeg.npz")
    p.add_argument("--n-train", type=int, default=2000)
    p.add_argument("--n-test", type=int, default=500)
    p.add_argument("--n-each", type=int, default=20, help="planted samples of every problem")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=3, help="timings of the image pass: best of this many")
    p.add_argument("--work-dir", default=None, help="where the folder and the run go (default: a temporary folder)")
    p.add_argument("--no-cleanvision", action="store_true", help="skip the CleanVision comparison")


def load_cifar_jpeg(src: str | Path, n_train: int, n_test: int):
    """(train pixels, train labels, train bytes, test pixels, test labels, test bytes, class names)."""
    from PIL import Image

    path = Path(src) / "cifar10_jpeg.npz"
    if not path.exists():
        from curator.data.problems import DataError

        raise DataError(f"{str(path)!r} not found: --src must be the folder holding cifar10_jpeg.npz")
    z = np.load(path, allow_pickle=False)
    out = []
    for split, n in (("train", n_train), ("test", n_test)):
        blob, off = z[f"{split}_jpeg"], z[f"{split}_offsets"]
        raw = [blob[off[i]:off[i + 1]].tobytes() for i in range(min(n, len(off) - 1))]
        px = np.stack([np.asarray(Image.open(io.BytesIO(b)).convert("RGB")) for b in raw])
        out += [px, z[f"{split}_labels"][:len(raw)].astype(np.int64), raw]
    return (*out, [str(c) for c in z["class_names"]])


def thumbnail_embeddings(images, refs: np.ndarray, side: int = 16) -> np.ndarray:
    """(N, 3·side²) float32: each image box-filtered to side x side RGB — a training-free embedding."""
    from PIL import Image

    return np.stack([np.asarray(Image.fromarray(images.read(int(r))).resize((side, side), Image.BOX), np.float32).ravel()
                     for r in refs])


def scores(flag: np.ndarray, target: np.ndarray, planted_any: np.ndarray, severity: np.ndarray | None = None) -> dict:
    """recall / false-flag rate / precision of `flag` against `target` (see the module docstring)."""
    clean = ~planted_any
    tp, fp_clean = int((flag & target).sum()), int((flag & clean).sum())
    row = {"planted": int(target.sum()), "found": tp, "recall": tp / max(int(target.sum()), 1),
           "clean_flagged": fp_clean, "false_flag_rate": fp_clean / max(int(clean.sum()), 1),
           "precision": tp / max(tp + fp_clean, 1), "other_planted": int((flag & planted_any & ~target).sum())}
    if severity is not None and np.isfinite(severity[target]).any():
        row["recall_by_severity"] = {f"{s:g}": float(flag[target & (severity == s)].mean())
                                     for s in sorted(set(severity[target][np.isfinite(severity[target])]))}
    return row


def curator_flags(run, truth: pd.DataFrame) -> dict[str, np.ndarray]:
    """{check: (N,) bool over `truth` rows} from the run's audit.parquet / hygiene.parquet."""
    from curator import runfiles

    audit = run.read_parquet(runfiles.AUDIT).set_index("sample_id").loc[truth["sample_id"]]
    hyg = run.read_parquet(runfiles.HYGIENE).set_index("sample_id").loc[truth["sample_id"]]
    q = audit["quality_issues"].fillna("").astype(str).str.split(",")
    out = {c: q.map(lambda names, c=c: c in names).to_numpy(bool) for c in QUALITY}
    out.update({"outlier": audit["is_outlier_issue"].to_numpy(bool), "duplicate": audit["is_duplicate_issue"].to_numpy(bool),
                "exact_duplicate": (hyg["duplicate_type"] == "exact").to_numpy(bool),
                "near_duplicate": audit["is_duplicate_issue"].to_numpy(bool),
                "leak": audit["is_leak_issue"].to_numpy(bool),
                # label issues in plain sight: flagged members of groups whose copies carry different labels
                "label": (audit["is_label_issue"] & hyg["dup_conflict"]).to_numpy(bool)})
    return out


def cleanvision_flags(folder: Path, truth: pd.DataFrame) -> tuple[dict[str, np.ndarray], float]:
    """CleanVision's flags for the training images of `truth` and the seconds `find_issues` took."""
    from cleanvision import Imagelab

    lab = Imagelab(data_path=str(folder))
    t0 = time.perf_counter()
    lab.find_issues(verbose=False)
    seconds = time.perf_counter() - t0
    issues = lab.issues.copy()
    issues.index = [Path(p).resolve().relative_to(folder.resolve()).as_posix() for p in issues.index]
    iss = issues.reindex(truth["sample_id"])
    out = {c: iss[f"is_{c}_issue"].fillna(False).to_numpy(bool) for c in QUALITY}
    out["exact_duplicate"] = iss["is_exact_duplicates_issue"].fillna(False).to_numpy(bool)
    out["near_duplicate"] = iss["is_near_duplicates_issue"].fillna(False).to_numpy(bool)
    out["duplicate"] = out["exact_duplicate"] | out["near_duplicate"]
    leaked = set()
    for kind in ("exact_duplicates", "near_duplicates"):
        for s in lab.info[kind]["sets"]:
            rel = [Path(p).resolve().relative_to(folder.resolve()).as_posix() for p in s]
            if any(r.startswith("test/") for r in rel):
                leaked |= {r for r in rel if r.startswith("train/")}
    out["leak"] = truth["sample_id"].isin(leaked).to_numpy(bool)
    return out, seconds


def time_image_pass(ds, repeats: int) -> dict:
    """Best-of-`repeats` seconds of the image pass over every manifest row, without and with the measurement."""
    from curator.data.problems import ProblemReport
    from curator.data.validate import check_images
    from curator.data.properties import Measurer

    best = {"decode_only_s": np.inf, "decode_and_measure_s": np.inf}
    for _ in range(repeats):
        for key, measure in (("decode_only_s", None), ("decode_and_measure_s", Measurer())):
            t0 = time.perf_counter()
            check_images(ds, ProblemReport(), measure=measure, progress=False)
            if measure is not None:
                measure.frame()
            best[key] = min(best[key], time.perf_counter() - t0)
    best["n_images"] = len(ds.manifest)
    best["measure_overhead"] = best["decode_and_measure_s"] / best["decode_only_s"] - 1.0
    return {k: round(float(v), 4) for k, v in best.items()}


def run(args) -> dict:
    from curator import runfiles
    from curator.bench.hygiene_plant import expected, plant_folder
    from curator.data.options import DatasetOptions
    from pipelines.audit import score_stages
    from pipelines.prepare import prepare_run, train_rows
    from pipelines.recipes import Recipe

    tr_px, tr_y, tr_b, te_px, te_y, te_b, names = load_cifar_jpeg(args.src, args.n_train, args.n_test)
    with tempfile.TemporaryDirectory(prefix="curator-hygiene-") as tmp:
        work = Path(args.work_dir or tmp)
        folder = work / "folder"
        planted = plant_folder(folder, tr_px, tr_y, te_px, te_y, names, n_each=args.n_each, seed=args.seed,
                               train_bytes=tr_b, test_bytes=te_b)
        t0 = time.perf_counter()
        run_dir, ds = prepare_run(work / "run", DatasetOptions(dataset="imagefolder", root=str(folder), seed=args.seed))
        t_prepare = time.perf_counter() - t0
        m = ds.manifest
        emb = thumbnail_embeddings(ds.images, m["image_ref"].to_numpy())
        run_dir.write_npy(runfiles.EMBEDDINGS, emb[train_rows(ds)].astype(np.float16))
        run_dir.write_npy(runfiles.EMBEDDINGS_TEST, emb[(m["split"] == "test").to_numpy()].astype(np.float16))
        train_emb = run_dir.read_npy(runfiles.EMBEDDINGS)
        # the pipeline's own wiring from the embeddings on (no heads: they only explain, nothing here reads them)
        score_stages(run_dir, ds, train_emb, {}, Recipe(), seed=args.seed, until="audit")
        t_evidence, t_hygiene = (run_dir.stage_record(s)["seconds"] for s in ("evidence", "hygiene"))
        truth = planted.train.set_index("sample_id").loc[ds.train["sample_id"]].reset_index()
        summary = run_dir.read_json(runfiles.HYGIENE_SUMMARY)
        found = curator_flags(run_dir, truth)
        pairs = run_dir.read_parquet(runfiles.LEAKAGE)
        timing = time_image_pass(ds, args.repeats)
        timing.update({"prepare_s": round(t_prepare, 3), "evidence_s": round(t_evidence, 3), "hygiene_stage_s": round(t_hygiene, 3)})
        cv, cv_error = None, None
        if not args.no_cleanvision:
            try:
                cv, timing["cleanvision_find_issues_s"] = cleanvision_flags(folder, truth)
            except ImportError as exc:
                cv_error = f"CleanVision is not installed ({exc}); pip install cleanvision (the bench extra)"
                LOG.warning("%s", cv_error)
    planted_any = truth["planted"].to_numpy(object) != ""
    severity = truth["severity"].to_numpy(float)
    rows = []
    for check in ("exact_duplicate", "near_duplicate", "duplicate", "leak", "label", *QUALITY, "outlier"):
        target = expected(truth, check)
        for tool, flags in (("curator", found), ("cleanvision", cv)):
            if flags is None or check not in flags:
                continue
            r = scores(flags[check], target, planted_any, severity)
            by_sev = r.pop("recall_by_severity", None)
            rows.append({"check": check, "tool": tool, **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()},
                         "recall_by_severity": by_sev or ""})
    want = planted.leaks.merge(pairs, on=["sample_id", "other_id"], how="left", suffixes=("", "_found"))
    leak_pairs = {"planted": len(planted.leaks), "found": int(want["match_found"].notna().sum()),
                  "pairs_listed": len(pairs), "pairs_not_planted": int(len(pairs) - want["match_found"].notna().sum())}
    return {"rows": rows, "timing": timing, "leak_pairs": leak_pairs, "n_train": int(len(truth)),
            "n_clean_train": int((~planted_any).sum()), "n_test": int((m["split"] == "test").sum()),
            "embedder": "thumbnails (16x16 RGB, training-free)", "thresholds": summary, "cleanvision_error": cv_error}
