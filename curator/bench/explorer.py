"""`curator bench explorer`: is the explorer responsive at 1M rows? (issue 6, docs/explorer.md)

Writes a synthetic run with `--rows` training samples (default 1,000,000): manifest (images are
scikit-learn's 8x8 digits, image_ref = i mod 1797, so thumbnails are real and tiny), generated
signals.parquet and audit.parquet over 10 long-tailed classes, and 1,000 review decisions. Then it
measures (a) `load_run` (once per server process), (b) `filter_samples` for a sequence of filter
changes, and (c) the app's actual re-render of the flagged grid after each filter change with
streamlit.testing.v1.AppTest (script execution and element tree, without the browser's drawing).
"""
from __future__ import annotations

import logging
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from curator import runfiles

LOG = logging.getLogger(__name__)

NAME = "explorer"
HELP = "explorer responsiveness on a synthetic 1M-row run (filtering and AppTest re-render)"

N_CLASSES = 10


def add_arguments(parser) -> None:
    parser.add_argument("--rows", type=int, default=1_000_000, help="training samples in the synthetic run")
    parser.add_argument("--run-dir", default=None, help="where to write the synthetic run (default: a temp dir)")
    parser.add_argument("--repeats", type=int, default=3, help="timings per filter change (median reported)")
    parser.add_argument("--no-apptest", action="store_true", help="skip the AppTest re-render measurement")
    parser.add_argument("--map-rows", type=int, default=10_000,
                        help="training samples for the embedding-map step (0 skips it): time to the first map shown "
                             "(PCA) and to the UMAP map, in a fresh process (so UMAP's import and compilation count)")


def write_synthetic_run(path: str | Path, n: int, seed: int = 0) -> Path:
    """A contract-shaped run with `n` generated training samples (no embeddings, no heads)."""
    from curator.data.manifest import make_manifest
    from curator.data.stats import shot_group
    from curator.data.options import DatasetOptions
    from curator.review import record_decisions
    from curator.rundir import RunDir

    rng = np.random.default_rng(seed)
    run = RunDir(path)
    prior = 100.0 ** (-np.arange(N_CLASSES) / (N_CLASSES - 1))          # exponential long tail, γ = 100
    true = rng.choice(N_CLASSES, n, p=prior / prior.sum()).astype(np.int64)
    noisy = rng.random(n) < 0.2
    label = np.where(noisy, rng.integers(0, N_CLASSES, n), true).astype(np.int64)
    ids = np.char.add("s/", np.char.zfill(np.arange(n).astype(str), 7))
    manifest = make_manifest(ids, label, source=np.full(n, "synthetic"), image_ref=np.arange(n) % 1797,
                             true_label=true, split="train")
    run.write_json(runfiles.CONFIG, {"dataset": DatasetOptions(dataset="digits").to_dict(), "recipe": {},
                                   "class_names": [f"class {c}" for c in range(N_CLASSES)], "dataset_info": {"synthetic": n}})
    run.write_parquet(runfiles.MANIFEST, manifest)
    wrong = label != true
    score = np.clip(np.where(wrong, rng.beta(5, 2, n), rng.beta(2, 5, n)), 0, 1).astype(np.float32)
    signals = {"sample_id": ids, "label": label, "true_label": true}
    for head in ("ce", "lasl", "cbs", "gdw", "fsr"):
        signals[f"{head}_prob_label"] = np.clip(1 - score + rng.normal(0, 0.1, n), 0, 1).astype(np.float32)
        signals[f"{head}_pred"] = np.where(rng.random(n) < 0.8, true, label)
        signals[f"{head}_margin"] = rng.normal(1 - 2 * score, 0.5).astype(np.float32)
        signals[f"{head}_loss"] = rng.gamma(1 + 3 * score, 0.5).astype(np.float32)
    signals.update({"lasl_sigma": np.exp(-score).astype(np.float32), "gdw_weight": (1 - score).astype(np.float32),
                    "fsr_meta_margin": rng.normal(0.5 - score, 0.2).astype(np.float32),
                    "knn_agreement": np.clip(1 - score + rng.normal(0, 0.1, n), 0, 1).astype(np.float32),
                    "knn_suggested_label": true, "knn_kth_distance": rng.random(n).astype(np.float32),
                    "dup_group": np.full(n, -1, np.int64), "dup_conflict": np.zeros(n, bool)})
    run.write_parquet(runfiles.SIGNALS, pd.DataFrame(signals))
    counts = np.bincount(label, minlength=N_CLASSES)
    shot = shot_group(counts)[label]
    flagged = score > 0.5
    run.write_parquet(runfiles.AUDIT, pd.DataFrame({
        "sample_id": ids, "label": label, "label_issue_score": score, "is_label_issue": flagged,
        "suggested_label": np.where(flagged, true, label), "suggested_label_confidence": rng.random(n).astype(np.float32),
        "rank": (np.argsort(np.argsort(-score)) + 1).astype(np.int64), "shot_group": shot}))
    decided = rng.choice(n, min(1000, n), replace=False)
    record_decisions(run.path, ids[decided].tolist(), "drop")
    return run.path


def _time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


FILTER_STEPS = [  # (label, SampleFilter kwargs after the change, AppTest widget change); cumulative, as a person would
    ("flagged, by score", {}, None),
    ("+ given label 9 (tail)", {"classes": (9,)}, ("multiselect", "f_classes", [9])),
    ("+ flag: all", {"classes": (9,), "flagged": "all"}, ("radio", "f_flagged", "all")),
    ("+ score 0.2-0.8", {"classes": (9,), "flagged": "all", "score_range": (0.2, 0.8)}, ("slider", "f_score", (0.2, 0.8))),
    ("- class (all classes, score 0.2-0.8)", {"flagged": "all", "score_range": (0.2, 0.8)}, ("multiselect", "f_classes", [])),
    ("sort by knn_agreement", {"flagged": "all", "score_range": (0.2, 0.8), "sort_by": "knn_agreement"},
     ("selectbox", "f_sort", "knn_agreement")),
]


def run(args) -> dict:
    from curator.explore.filters import SampleFilter, filter_samples
    from curator.explore.review import review_status
    from curator.explore.run import load_run

    tmp = None
    if args.run_dir:
        path = Path(args.run_dir)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="curator-bench-explorer-")
        path = Path(tmp.name) / "run"
    t0 = time.perf_counter()
    write_synthetic_run(path, args.rows)
    gen_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    er = load_run(path)
    load_s = time.perf_counter() - t0
    status_s = _time(lambda: review_status(er), args.repeats)
    status, _ = review_status(er)
    rows = [{"step": "load_run (once per server)", "seconds": round(load_s, 3), "matching": er.n_samples}]
    rows.append({"step": "review status of 1,000 decisions", "seconds": round(status_s, 4), "matching": int((status > 0).sum())})
    for name, kw, _ in FILTER_STEPS:
        flt = SampleFilter(**kw)
        secs = _time(lambda: filter_samples(er.table, flt, status), args.repeats)
        rows.append({"step": f"filter: {name}", "seconds": round(secs, 4), "matching": len(filter_samples(er.table, flt, status))})
        filter_samples(er.table, flt, status, sort_cache=er.sort_cache)  # first use sorts the whole column once
        secs = _time(lambda: filter_samples(er.table, flt, status, sort_cache=er.sort_cache), args.repeats)
        rows.append({"step": "  same, with the cached sort order", "seconds": round(secs, 4), "matching": ""})
    result = {"rows_in_run": args.rows, "generate_s": round(gen_s, 2), "rows": rows}
    if not args.no_apptest:
        result["rows"] += _apptest_rerenders(path, args.repeats)
    if args.map_rows:
        result["rows"] += _map_first_view(path.parent / "map-run", args.map_rows)
    if tmp is not None:
        tmp.cleanup()
    return result


def write_map_run(path: Path, n: int, dim: int = 128) -> Path:
    """A synthetic run (`write_synthetic_run`) with (n, dim) clustered embeddings stored as the embed stage stores
    them (recorded for the manifest's sample ids), so the explorer's map reads them."""
    from curator.data.cache import ids_digest
    from curator.rundir import RunDir

    write_synthetic_run(path, n)
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(N_CLASSES, dim))
    emb = centres[rng.integers(0, N_CLASSES, n)] + rng.normal(scale=0.5, size=(n, dim))
    run = RunDir(path)
    ids = run.read_parquet(runfiles.MANIFEST, columns=["sample_id"])["sample_id"].astype(str).tolist()
    run.run_stage("embed", lambda: run.write_npy(runfiles.EMBEDDINGS, emb.astype(np.float16)), inputs={"synthetic": n},
                  outputs=[runfiles.EMBEDDINGS], ids=ids_digest(ids))
    return path


def _map_first_view(path: Path, n: int) -> list[dict]:
    """What the person waits for on the map page, measured in a fresh Python process that has loaded what a running
    explorer has: the UMAP map starts in another process (MapJob) and a PCA map of the same rows is shown meanwhile
    (its time includes importing scikit-learn's PCA); the UMAP time includes umap-learn's import and compilation."""
    import json
    import subprocess
    import sys

    write_map_run(path, n)
    code = ("import json, sys, time\n"
            "import curator.explore.run, streamlit\n"  # what a running explorer has loaded before the map page
            "from curator.explore.embedding_map import MapJob, compute_map\n"
            "t0 = time.perf_counter()\n"
            "job = MapJob(sys.argv[1], 'umap')\n"
            "compute_map(sys.argv[1], method='pca')\n"
            "first = time.perf_counter() - t0\n"
            "job.wait()\n"
            "print(json.dumps({'first': first, 'umap': time.perf_counter() - t0, 'error': job.error}))\n")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    if r["error"]:
        raise RuntimeError(f"the UMAP map failed: {r['error']}")
    return [{"step": f"map: first map shown ({n:,} points, PCA while UMAP runs)", "seconds": round(r["first"], 2),
             "matching": n},
            {"step": f"map: UMAP map ready ({n:,} points, fresh process: import + compile + fit)",
             "seconds": round(r["umap"], 2), "matching": n}]


def _apptest_rerenders(path: Path, repeats: int) -> list[dict]:
    from streamlit.testing.v1 import AppTest

    from ui import APP

    os.environ["CURATOR_RUN_DIR"] = str(path)
    at = AppTest.from_file(str(APP), default_timeout=600)
    t0 = time.perf_counter()
    at.run()
    cold = time.perf_counter() - t0
    at.switch_page("views/flagged.py").run()
    if at.exception:
        raise RuntimeError(f"the app failed on the synthetic run: {at.exception}")
    out = [{"step": "app: first render (loads the run)", "seconds": round(cold, 3), "matching": ""}]
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - t0)
    out.append({"step": "app: re-render flagged grid (no change)", "seconds": round(statistics.median(times), 3), "matching": ""})
    for name, _, change in FILTER_STEPS:
        if change is None:
            continue
        kind, key, value = change
        t0 = time.perf_counter()
        getattr(at, kind)(key=key).set_value(value).run()
        secs = time.perf_counter() - t0
        if at.exception:
            raise RuntimeError(f"the app failed after '{name}': {at.exception}")
        out.append({"step": f"app: re-render after {name}", "seconds": round(secs, 3), "matching": ""})
    return out
