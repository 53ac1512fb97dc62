"""`curator bench audit-cost`: the whole `curator audit --embeddings` against cleanlab's standard pipeline,
as whole processes on the same embeddings, timed side by side (issue 23).

The two sides, each a fresh Python process started `--repeats` times, alternating (which one goes first
alternates too, so a drift in the machine's load touches both):

- **cleanlab** (the baseline, `cleanlab_pipeline` below, run by ``python -m curator.bench.audit_cost``): read the
  embeddings and labels, 5-fold cross-validated scikit-learn ``LogisticRegression`` (its defaults, on standardised
  features, `curator.bench.detect_cifar10n.cleanlab_cv_probs`) → ``cross_val_predict`` probabilities →
  ``cleanlab.filter.find_label_issues`` (flags) and ``get_label_quality_scores`` (the score for AUROC);
- **curator**: ``curator audit --dataset csv --root DATA/labels.csv --embeddings DATA/embeddings.npy --out RUN
  --json`` with the default recipe (``--set`` passes overrides); or, with ``--cifar-root``, through the cifar10n
  adapter on the materialised CIFAR-10 images (pixel hygiene included, as in BENCHMARKS.md's CIFAR-10N rows).

Reported: each side's process seconds per repeat and median, the ratio median curator / median cleanlab, curator's
seconds per stage (RUN/provenance.json ``timings_s``, median over repeats) and the detection (AUROC, F1 against the
true labels) of both. Inputs: the shared CIFAR-10N embeddings and a label set (default ``worse``), ``--limit`` for
the first N rows, or ``--synthetic N`` for the `curator.bench.scale` generator (tests: seconds).

Timings are only comparable on a quiet machine; the ratio of two processes run back to back is what to read.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from curator.bench.detect_cifar10n import LABEL_KEYS, SHARED

NAME = "audit-cost"
HELP = "the whole `curator audit --embeddings` vs cleanlab's standard pipeline, whole processes side by side"
LOG = logging.getLogger(__name__)
EMBEDDINGS = "embeddings-simsiam-r18/train.npy"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", default=str(SHARED), help="folder with CIFAR-10_human.pt and the embeddings folder")
    p.add_argument("--embeddings", default=None, help=f"(N, d) .npy in training order (default DATA_DIR/{EMBEDDINGS})")
    p.add_argument("--label-set", default="worse", choices=sorted(LABEL_KEYS), help="CIFAR-10N label set")
    p.add_argument("--limit", type=int, default=None, help="only the first N rows")
    p.add_argument("--synthetic", type=int, default=None, metavar="N",
                   help="a generated problem of N rows (`curator bench scale`'s generator) instead of CIFAR-10N")
    p.add_argument("--dim", type=int, default=512, help="embedding size of --synthetic (default %(default)s)")
    p.add_argument("--cifar-root", default=None,
                   help="materialised CIFAR-10 root: audit through the cifar10n adapter (images read) instead of a CSV")
    p.add_argument("--repeats", type=int, default=3, help="runs of each side (default %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work-dir", default="bench-results/audit-cost", help="the written inputs and the run directories")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="recipe overrides passed to `curator audit`")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds allowed per process")


# ---------------------------------------------------------------------------------------------
# the baseline: cleanlab's standard pipeline, run in its own process

def cleanlab_pipeline(X: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """cleanlab's standard pipeline on embeddings X (N, d) with given labels y (N,): (flags (N,) bool,
    issue score (N,) = 1 − label quality)."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    from curator.bench.detect_cifar10n import cleanlab_cv_probs

    P = cleanlab_cv_probs(X, y, seed)
    return np.asarray(find_label_issues(y, P), bool), 1.0 - get_label_quality_scores(y, P)


def _cleanlab_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m curator.bench.audit_cost")
    p.add_argument("embeddings")
    p.add_argument("labels", help=".npy of the given labels (N,)")
    p.add_argument("out", help=".npz written with flag and score")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    X = np.load(a.embeddings, allow_pickle=False)
    y = np.load(a.labels, allow_pickle=False).astype(np.int64)
    flag, score = cleanlab_pipeline(X, y, a.seed)
    tmp = Path(a.out).with_suffix(".tmp.npz")
    np.savez(tmp, flag=flag, score=score)
    os.replace(tmp, a.out)
    return 0


# ---------------------------------------------------------------------------------------------
# inputs

def _inputs(args) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """(embeddings (N, d), given labels (N,), true labels (N,), description)."""
    if args.synthetic:
        from curator.bench.scale import clothing1m_like

        X, y, t = clothing1m_like(args.synthetic, dim=args.dim, seed=args.seed)
        return X, y, t, f"synthetic clothing1m_like n={args.synthetic} dim={args.dim} seed={args.seed}"
    from curator.data.adapters.cifarn import load_label_file
    from curator.data.problems import DataError

    data = Path(args.data_dir)
    emb = Path(args.embeddings) if args.embeddings else data / EMBEDDINGS
    for f in (emb, data / "CIFAR-10_human.pt"):
        if not f.is_file():
            raise DataError(f"{f}: not found (--data-dir / --embeddings, or --synthetic N for a generated problem)")
    X = np.load(emb, allow_pickle=False)
    human = load_label_file(data / "CIFAR-10_human.pt")
    y, t = (np.asarray(human[k]).astype(np.int64) for k in (LABEL_KEYS[args.label_set], "clean_label"))
    if len(X) != len(y):
        raise DataError(f"{emb}: {len(X)} embeddings but {len(y)} CIFAR-10N labels")
    return X, y, t, f"{emb} labels {args.label_set}"


def write_inputs(folder: Path, X: np.ndarray, y: np.ndarray, t: np.ndarray) -> dict[str, Path]:
    """DATA/embeddings.npy, labels.npy (given), and labels.csv (a manifest of rows without images) for the audit."""
    import pandas as pd

    folder.mkdir(parents=True, exist_ok=True)
    paths = {"embeddings": folder / "embeddings.npy", "labels": folder / "labels.npy", "csv": folder / "labels.csv"}
    np.save(paths["embeddings"], X)
    np.save(paths["labels"], y)
    n_classes = int(max(y.max(), t.max())) + 1
    (folder / "classes.txt").write_text("".join(f"class_{c:03d}\n" for c in range(n_classes)))
    names = np.array([f"class_{c:03d}" for c in range(n_classes)])
    pd.DataFrame({"path": [f"images/{i:07d}.jpg" for i in range(len(y))], "label": names[y],
                  "true_label": names[t]}).to_csv(paths["csv"], index=False)
    return paths


# ---------------------------------------------------------------------------------------------
# the two sides as processes

def _env() -> dict:
    root = str(Path(__file__).resolve().parents[2])     # this checkout first, as the parent process sees it
    return dict(os.environ, PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))


def _timed(cmd: list[str], timeout: float, what: str) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_env())
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return wall, proc.stdout


def run_cleanlab(paths: dict[str, Path], out: Path, t: np.ndarray, y: np.ndarray, args) -> dict:
    from curator.audit.evaluate import detection_metrics

    out.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "curator.bench.audit_cost", str(paths["embeddings"]), str(paths["labels"]), str(out),
           "--seed", str(args.seed)]
    wall, _ = _timed(cmd, args.timeout, "cleanlab pipeline")
    with np.load(out, allow_pickle=False) as z:
        m = detection_metrics(t != y, z["score"], z["flag"])
    return {"wall_s": wall, "auroc": m["auroc"], "f1": m["f1"], "flagged": m["n_flagged"]}


def run_curator(paths: dict[str, Path], run_dir: Path, args) -> dict:
    if run_dir.exists():
        shutil.rmtree(run_dir)                          # a fresh run directory: no stage is reused
    if args.cifar_root:
        cmd = [sys.executable, "-m", "curator", "audit", "--dataset", "cifar10n", "--root", args.cifar_root,
               "--label-set", args.label_set]
    else:
        cmd = [sys.executable, "-m", "curator", "audit", "--dataset", "csv", "--root", str(paths["csv"])]
    cmd += ["--embeddings", str(paths["embeddings"]), "--out", str(run_dir), "--json"]
    cmd += [x for o in args.overrides for x in ("--set", o)]
    wall, stdout = _timed(cmd, args.timeout, "curator audit")
    summary = json.loads(stdout)
    m = summary.get("metrics") or {}
    prov = json.loads((run_dir / "provenance.json").read_text())
    return {"wall_s": wall, "pipeline_s": summary.get("seconds"), "auroc": m.get("auroc"), "f1": m.get("f1"),
            "flagged": summary.get("n_flagged"), "stage_s": prov.get("timings_s", {})}


def _median(values) -> float:
    return round(float(np.median(values)), 2)


def run(args) -> dict:
    from curator.data.problems import DataError

    if args.repeats < 1:
        raise DataError(f"--repeats must be >= 1 (got {args.repeats})")
    if args.limit is not None and args.limit < 10:
        raise DataError(f"--limit must be at least 10 rows (got {args.limit})")
    if args.cifar_root and (args.synthetic or args.limit):
        raise DataError("--cifar-root audits all 50,000 CIFAR-10 images: it cannot be combined with --limit / --synthetic")
    X, y, t, source = _inputs(args)
    if args.limit:
        X, y, t = X[:args.limit], y[:args.limit], t[:args.limit]
    work = Path(args.work_dir)
    paths = write_inputs(work / "data", X, y, t)
    runs = []
    for r in range(args.repeats):
        order = ("cleanlab", "curator") if r % 2 == 0 else ("curator", "cleanlab")
        for side in order:
            LOG.info("audit-cost: repeat %d/%d, %s", r + 1, args.repeats, side)
            res = (run_cleanlab(paths, work / "cleanlab.npz", t, y, args) if side == "cleanlab"
                   else run_curator(paths, work / "run", args))
            runs.append({"repeat": r + 1, "side": side, **res})
            LOG.info("audit-cost: %s %.1f s, AUROC %s, F1 %s", side, res["wall_s"], res["auroc"], res["f1"])
    cl = [x for x in runs if x["side"] == "cleanlab"]
    cu = [x for x in runs if x["side"] == "curator"]
    stages = {k: _median([x["stage_s"].get(k, 0.0) for x in cu]) for k in cu[-1]["stage_s"]}
    rows = [{"side": name, "median_s": _median([x["wall_s"] for x in side]),
             "runs_s": " ".join(f"{x['wall_s']:.1f}" for x in side), "auroc": side[-1]["auroc"], "f1": side[-1]["f1"],
             "flagged": side[-1]["flagged"]} for name, side in (("cleanlab", cl), ("curator", cu))]
    rows[0]["stages_s"], rows[1]["stages_s"] = "", ", ".join(f"{k} {v}" for k, v in stages.items())
    ratio = round(rows[1]["median_s"] / rows[0]["median_s"], 3) if rows[0]["median_s"] > 0 else None
    return {"source": source, "n": int(len(y)), "dim": int(X.shape[1]), "noise": round(float((y != t).mean()), 4),
            "repeats": args.repeats, "ratio": ratio, "curator_stage_s": stages, "overrides": list(args.overrides),
            "rows": rows, "runs": runs,
            "note": "process wall seconds; comparable only when the machine is otherwise quiet"}


if __name__ == "__main__":
    sys.exit(_cleanlab_main(sys.argv[1:]))
