"""`curator bench scale`: the post-embedding audit at growing N — seconds and peak memory per stage (BENCHMARKS.md, docs/scale.md).

For each N it writes a Clothing1M-shaped synthetic problem (`clothing1m_like`: 14 long-tailed classes, ~38 %
structured label noise among confusable classes, d = 512 float16 embeddings, a CSV manifest whose image files
do not exist — embeddings computed elsewhere), then runs the real command in a fresh process:

    curator audit --dataset csv --root DATA/labels.csv --embeddings DATA/embeddings.npy --out RUN --json

and reads each stage's seconds and peak resident memory from the run (RUN/provenance.json: ``timings_s``,
``peak_memory_mb``), the detection quality from RUN/metrics.json, and the whole process's peak memory (the
largest stage peak: each stage resets the high-water mark).
Growth per stage is fitted as seconds = a + b·N (b reported per 100k rows) and as an exponent (log-log slope).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

NAME = "scale"
HELP = "post-embedding audit on Clothing1M-shaped synthetic embeddings at growing N: seconds and memory per stage"
LOG = logging.getLogger(__name__)
N_CLASSES = 14


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sizes", default="50000,200000,1000000", help="comma-separated N (default: %(default)s)")
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--noise", type=float, default=0.38, help="share of wrong labels (default %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work-dir", default="bench-results/scale", help="generated data and run directories")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="recipe overrides passed to `curator audit` (e.g. --set heads.heads=[])")
    p.add_argument("--timeout", type=float, default=3 * 3600, help="seconds allowed per audit")


def clothing1m_like(n: int, *, dim: int = 512, noise: float = 0.38, seed: int = 0
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(embeddings (n, dim) float16, given labels (n,), true labels (n,)): 14 classes, largest ≈ 5× the smallest
    (exponential profile), every class with two confusable neighbours whose means lie close; a wrong label goes
    to a neighbour with probability 0.7, else to any other class; per-class noise rates vary around `noise`.

    The geometry follows real SSL embeddings rather than isotropic noise: variance falls as 1/j along the j-th
    of `dim` random orthogonal directions (participation ratio ≈ 40 after standardising; the shared CIFAR-10
    SimSiam embeddings: ≈ 32, 90% of the variance in 89 of 512 dimensions), and the class means are spaced so
    that a 20-NN vote on the true labels is right ≈ 70% of the time (0.71 at 20,000 rows, seed 0; those embeddings:
    0.75). Isotropic 512-d noise (generator 1) made IVF search need nprobe 256 of 894 lists, a cost no real
    embedding has. Generator 3 draws the problem (class means, rotation, noise rates) from a random stream of its
    own, so every n samples the same problem (generator 2 drew it after the n labels: a different one per n), and
    scales the per-class noise rates so that their average under the class prior is `noise`."""
    world = np.random.default_rng([seed, 0])       # the problem: class geometry and noise rates, the same at every n
    rng = np.random.default_rng([seed, 1])         # the samples drawn from it
    C = N_CLASSES
    sizes = 5.0 ** (-np.arange(C) / (C - 1))
    t = rng.choice(C, size=n, p=sizes / sizes.sum())
    centres = world.normal(size=(C, dim))
    neighbours = np.stack([(np.arange(C) + 1) % C, (np.arange(C) + 3) % C], axis=1)     # (C, 2)
    for c in range(C):                                                                   # confusable pairs lie close
        centres[neighbours[c, 0]] = 0.6 * centres[neighbours[c, 0]] + 0.4 * centres[c]
    centres *= 0.5                                                                       # overlap: kNN accuracy ≈ 0.75
    spread = np.arange(1, dim + 1) ** -0.5                                               # variance ∝ 1/j
    rotation = np.linalg.qr(world.normal(size=(dim, dim)))[0]
    X = np.empty((n, dim), np.float16)
    for s in range(0, n, 100_000):                                                       # bounded memory
        e = min(n, s + 100_000)
        X[s:e] = (((centres[t[s:e]] + rng.normal(size=(e - s, dim))) * spread) @ rotation).astype(np.float16)
    prior = sizes / sizes.sum()
    u = world.uniform(0.4, 1.6, size=C)                                                  # per true class, and
    rate = np.clip(noise * u / (prior @ u), 0.0, 0.8)                                    # `noise` on average
    wrong = rng.random(n) < rate[t]
    to_neighbour = rng.random(n) < 0.7
    other = (t + rng.integers(1, C, size=n)) % C
    y = np.where(wrong, np.where(to_neighbour, neighbours[t, rng.integers(0, 2, size=n)], other), t)
    return X, y.astype(np.int64), t.astype(np.int64)


def write_problem(folder: Path, n: int, *, dim: int, noise: float, seed: int) -> tuple[Path, Path]:
    """Write (or reuse) DATA/labels.csv and DATA/embeddings.npy for one N."""
    import pandas as pd

    folder.mkdir(parents=True, exist_ok=True)
    csv, emb = folder / "labels.csv", folder / "embeddings.npy"
    stamp = folder / "problem.json"
    want = {"n": n, "dim": dim, "noise": noise, "seed": seed, "generator": 3}
    if csv.exists() and emb.exists() and stamp.exists() and json.loads(stamp.read_text()) == want:
        return csv, emb
    X, y, t = clothing1m_like(n, dim=dim, noise=noise, seed=seed)
    names = np.array([f"class_{c:02d}" for c in range(N_CLASSES)])
    pd.DataFrame({"path": [f"images/{i // 10000}/{i:07d}.jpg" for i in range(n)], "label": names[y],
                  "true_label": names[t]}).to_csv(csv, index=False)
    np.save(emb, X)
    stamp.write_text(json.dumps(want))
    return csv, emb


def _fit(ns: list[int], seconds: list[float]) -> dict:
    if len(ns) < 2:
        return {}
    n, s = np.asarray(ns, float), np.asarray(seconds, float)
    b, a = np.polyfit(n, s, 1)
    ok = s > 0
    exponent = float(np.polyfit(np.log(n[ok]), np.log(s[ok]), 1)[0]) if ok.sum() >= 2 else None
    return {"per_100k_s": round(float(b) * 1e5, 2), "intercept_s": round(float(a), 2),
            "exponent": None if exponent is None else round(exponent, 2)}


def run(args) -> dict:
    work = Path(args.work_dir)
    sizes = [int(s) for s in str(args.sizes).split(",") if s.strip()]
    rows, per_stage = [], {}
    for n in sizes:
        csv, emb = write_problem(work / f"data-{n}", n, dim=args.dim, noise=args.noise, seed=args.seed)
        out = work / f"run-{n}"
        if out.exists():
            import shutil

            shutil.rmtree(out)                      # a fresh run directory: nothing is skipped
        cmd = [sys.executable, "-m", "curator", "audit", "--dataset", "csv", "--root", str(csv), "--embeddings",
               str(emb), "--out", str(out), "--json"] + [x for o in args.overrides for x in ("--set", o)]
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, env=os.environ.copy())
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"audit at N={n} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
        child_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        summary = json.loads(proc.stdout)
        prov = json.loads((out / "provenance.json").read_text())
        m = summary.get("metrics") or {}
        # each stage resets the process's high-water mark (to measure its own peak), so the operating system's
        # figure for the finished child covers only its last stage: the peak is the largest of all of them
        peaks_mib = [*prov.get("peak_memory_mb", {}).values(), child_peak / 1024 if child_peak > before else 0.0]
        row = {"n": n, "wall_s": round(wall, 1), "pipeline_s": summary.get("seconds"),
               "peak_gib": round(max(peaks_mib) / 1024, 2),
               "auroc": m.get("auroc"), "f1": m.get("f1"), "flagged": summary.get("n_flagged")}
        for stage, s in prov.get("timings_s", {}).items():
            row[f"{stage}_s"] = s
            per_stage.setdefault(stage, []).append((n, s))
        row["stage_peak_gib"] = {k: round(v / 1024, 2) for k, v in prov.get("peak_memory_mb", {}).items()}
        rows.append(row)
        LOG.info("N=%d: %.0f s, AUROC %s", n, wall, m.get("auroc"))
    growth = {stage: _fit([n for n, _ in v], [s for _, s in v]) for stage, v in per_stage.items() if len(v) == len(sizes)}
    total = [r["wall_s"] for r in rows]
    growth["whole audit"] = _fit(sizes, total)
    return {"rows": [{k: v for k, v in r.items() if k != "stage_peak_gib"} for r in rows],
            "stage_peak_gib": {r["n"]: r["stage_peak_gib"] for r in rows}, "growth": growth,
            "overrides": list(args.overrides), "dim": args.dim, "noise": args.noise}
