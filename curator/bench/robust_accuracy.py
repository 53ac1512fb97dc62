"""`curator bench robust-accuracy`: clean-test accuracy of the robust heads on fixed embeddings
(BENCHMARKS.md; paper 000's protocol on CIFAR-10).

Scenarios (all on the same embeddings, rows in CIFAR-10 training order):
- ``worse``: CIFAR-10N ``worse_label`` (40.2% human noise), all 50,000 images;
- ``lt100-nu20`` / ``lt100-nu60``: exponential long tail by true class, γ = 100 (seed 0, the
  protocol of `curator.data.corruption` and ``embeddings-simsiam-r18-lt100``), then uniform noise
  ν = 20% / 60% (label redrawn from all C classes with probability ν, same generator).
Test set: the balanced CIFAR-10 test set; test image i has label i // 1000 (dataset README).
"""
from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np

LOG = logging.getLogger(__name__)

NAME = "robust-accuracy"
HELP = "clean-test accuracy of the robust heads on CIFAR-10N worse and long-tailed noisy CIFAR-10"
DATA = Path("/work/shared/datasets/cifar10n")
ALL_HEADS = "ce,la,lasl,cbs,cb,focal,ldam,gdw,fsr,semi"
SCENARIOS = {"worse": None, "lt100-nu20": 0.2, "lt100-nu60": 0.6}
CLASS_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--embeddings-dir", default=str(DATA / "embeddings-simsiam-r18"),
                   help="folder with train.npy (50000 x d, CIFAR-10 training order) and test.npy (10000 x d)")
    p.add_argument("--labels", default=str(DATA / "CIFAR-10_human.pt"), help="CIFAR-10N label file")
    p.add_argument("--heads", default=ALL_HEADS, help="comma-separated heads (default: %(default)s)")
    p.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=None, help="override HeadsConfig.epochs (default 10)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="cpu or cuda (default: CUDA when present)")


def scenario_labels(name: str, clean: np.ndarray, worse: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(training rows kept, their noisy labels) for a scenario."""
    from curator.data.corruption import add_noise, subsample_long_tail

    if name == "worse":
        return np.arange(len(worse)), worse.astype(np.int64)
    nu = SCENARIOS[name]
    rng = np.random.default_rng(seed)
    keep = subsample_long_tail(clean, 10, "exp", 100.0, rng)
    noisy, _ = add_noise(clean[keep], 10, "uniform", nu, rng, CLASS_NAMES)
    return keep, noisy.astype(np.int64)


def run(args) -> dict:
    from curator.data.adapters.cifarn import load_label_file
    from curator.heads.config import HeadsConfig
    from curator.heads.predict import evaluate_on_test
    from curator.heads.registry import train_head

    emb_dir = Path(args.embeddings_dir)
    X_all = np.load(emb_dir / "train.npy").astype(np.float32)
    X_test = np.load(emb_dir / "test.npy").astype(np.float32)
    y_test = np.arange(len(X_test)) // (len(X_test) // 10)
    labels = load_label_file(Path(args.labels))
    clean, worse = labels["clean_label"], labels["worse_label"]
    # accuracy of each head as its paper trains it: full epochs at every N (the audit's default shrinks them above
    # heads.full_epochs_up_to samples for cost; the numbers in BENCHMARKS.md were taken with full epochs)
    cfg = HeadsConfig(full_epochs_up_to=0)
    if args.epochs:
        cfg = cfg.replace(epochs=args.epochs)
    heads = [h.strip() for h in args.heads.split(",") if h.strip()]
    rows = []
    for scen in [s.strip() for s in args.scenarios.split(",") if s.strip()]:
        if scen not in SCENARIOS:
            raise SystemExit(f"unknown scenario {scen!r}; known: {', '.join(SCENARIOS)}")
        keep, y = scenario_labels(scen, clean, worse, args.seed)
        X = X_all[keep]
        noise = float(np.mean(y != clean[keep]))
        LOG.info("scenario %s: %d samples, realised noise %.3f", scen, len(y), noise)
        results = {}
        for h in heads:
            t0 = time.perf_counter()
            res = train_head(h, X, y, 10, cfg, seed=args.seed, device=args.device, results=results)
            results[h] = res
            # shot groups by the true training class sizes (paper 000 / 002 protocol)
            rep = evaluate_on_test(res.model, X_test, y_test, clean[keep], 10, device=args.device)
            rows.append({"scenario": scen, "head": h, "n_train": len(y), "noise": round(noise, 4),
                         "accuracy": rep["accuracy"], "many": rep["per_shot"]["many"],
                         "medium": rep["per_shot"]["medium"], "few": rep["per_shot"]["few"],
                         "seconds": round(time.perf_counter() - t0, 2)})
            LOG.info("%s / %s: test accuracy %.4f (%.1f s)", scen, h, rep["accuracy"], rows[-1]["seconds"])
    return {"rows": rows, "embeddings": str(emb_dir), "settings": cfg.to_dict(),
            "shot_groups": "by the true training count per class: many >= 100, medium 21-99, few <= 20"}
