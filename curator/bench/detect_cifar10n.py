"""`curator bench detect-cifar10n`: curator's audit vs cleanlab on identical embeddings (SPEC §7).

For each CIFAR-10N label set, on the same embeddings (default: the shared development SimSiam
embeddings; ``--embeddings-dir`` points elsewhere, e.g. curator's own in .devcarry/own-embeddings):

- **curator**: the audit stage's own code path (`curator.audit.aggregate.aggregate`, then
  `curator.audit.classes.class_findings` for the estimated true class sizes, exactly as
  `pipelines.audit.audit_stage` calls them) with the default AuditConfig (``--set`` overrides);
- **cleanlab**: ``cleanlab.filter.find_label_issues`` for the flags, ``get_label_quality_scores`` for AUROC,
  argmax of the probabilities as suggestion, the confident-joint marginal as class sizes, all on 5-fold
  cross-validated multinomial logistic-regression probabilities (C = 1, L-BFGS:
  `curator.signals.confident.cross_val_probs`, equivalent to sklearn's LogisticRegression, the model the
  shared READMEs used for cleanlab's reference numbers).

``--variant lt100`` uses the long-tailed subset (γ = 100 by true class) and its own embeddings.

``--oracle`` adds a ceiling row that no real method can reach: a cross-fitted MLP head (as
`curator.audit.crossfit_heads`, plain logit-adjusted CE) trained on the **true** labels, combined with the
**true** class prior and the **true** noise transition T[c, l] by Bayes' rule, flagged at 0.5, suggestions by the
audit's own rules (``tail_suggestions``: the uniform-prior likelihood for flagged samples; p(c | x) otherwise). It
measures how much the embeddings themselves allow; a target above it needs better embeddings, not a better audit.
"""
from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np

from curator.audit.aggregate import aggregate
from curator.audit.classes import class_findings
from curator.audit.config import AuditConfig
from curator.audit.crossval import crossval_probs, standardise
from curator.audit.evaluate import balanced_suggestion_accuracy, class_size_error, detection_metrics, tail_rescue

NAME = "detect-cifar10n"
HELP = "label-issue detection on CIFAR-10N: curator vs cleanlab on the same embeddings"
LOG = logging.getLogger(__name__)
SHARED = Path("/work/shared/datasets/cifar10n")
LABEL_KEYS = {"worse": "worse_label", "aggre": "aggre_label", "random1": "random_label1", "random2": "random_label2",
              "random3": "random_label3"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--variant", choices=["balanced", "lt100"], default="balanced",
                   help="balanced CIFAR-10 (50k) or the γ=100 long-tailed subset (12,406)")
    p.add_argument("--label-sets", default="worse,aggre,random1", help="comma-separated CIFAR-10N label sets")
    p.add_argument("--data-dir", default=str(SHARED), help="folder with CIFAR-10_human.pt and the embeddings folders")
    p.add_argument("--embeddings-dir", default=None,
                   help="folder with train.npy (and indices.npy for lt100); default: the shared development embeddings")
    p.add_argument("--skip-cleanlab", action="store_true", help="only run curator")
    p.add_argument("--oracle", action="store_true",
                   help="add the ceiling row: an MLP trained on the true labels + the true noise transition")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override an AuditConfig field (e.g. --set rounds=1)")


def _load(args) -> tuple[np.ndarray, np.ndarray, dict, str]:
    import torch

    data = Path(args.data_dir)
    sub = "embeddings-simsiam-r18-lt100" if args.variant == "lt100" else "embeddings-simsiam-r18"
    edir = Path(args.embeddings_dir) if args.embeddings_dir else data / sub
    X = np.load(edir / "train.npy", allow_pickle=False)
    idx = np.load(edir / "indices.npy") if args.variant == "lt100" else np.arange(len(X))
    if len(idx) != len(X):
        raise ValueError(f"{edir}: {len(X)} embeddings but {len(idx)} indices")
    human = torch.load(data / "CIFAR-10_human.pt", weights_only=False)
    return X, idx, {k: np.asarray(v)[idx].astype(np.int64) for k, v in human.items()}, str(edir)


def _row(method, label_set, t, y, score, flag, sugg, sizes, seconds) -> dict:
    m = detection_metrics(t != y, score, flag)
    counts = np.bincount(t, minlength=10)
    rescue, n_tail = tail_rescue(t, y, flag, sugg, counts)
    wrong = t != y
    return {"labels": label_set, "method": method, "noise": round(float(wrong.mean()), 3), "auroc": m["auroc"],
            "precision": m["precision"], "recall": m["recall"], "f1": m["f1"],
            "suggest_acc": float(np.mean(sugg[wrong] == t[wrong])),
            "suggest_bacc": balanced_suggestion_accuracy(t, y, sugg), "tail_rescue": rescue, "n_tail": n_tail,
            "size_err": class_size_error(sizes, counts), "seconds": round(seconds, 1)}


def _cv_logreg(X: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    """5-fold cross-validated logistic regression (C = 1, as sklearn's default), (N, C) probabilities."""
    try:
        from curator.signals.confident import cross_val_probs  # L-BFGS softmax regression, sklearn-equivalent
    except ImportError:
        return crossval_probs(standardise(X), y, 10, folds=5, balanced=False, seed=seed)
    return cross_val_probs(np.asarray(X, np.float32), y, 10, folds=5, seed=seed)


def oracle_posterior(X: np.ndarray, true_label: np.ndarray, label: np.ndarray, n_classes: int, *,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(p(c | x, ỹ), p(c | x), B), each (N, C), from cheating inputs: B = out-of-fold class-balanced MLP
    probabilities fitted on the TRUE labels (a uniform-prior likelihood), times the true class prior (→ p(c | x)),
    times the true transition T[c, ỹ] (rows: true class, columns: given)."""
    from curator.audit.crossfit_heads import crossfit_mlp_probs

    B = crossfit_mlp_probs(standardise(X), true_label, n_classes, epochs=20, sl_lambda=0.0, seed=seed)
    prior = np.bincount(true_label, minlength=n_classes) / len(true_label)
    T = np.zeros((n_classes, n_classes))
    np.add.at(T, (true_label, label), 1.0)
    T /= np.maximum(T.sum(1, keepdims=True), 1.0)
    px = B.astype(np.float64) * prior[None, :]
    post = px * T[:, label].T
    return (post / np.maximum(post.sum(1, keepdims=True), 1e-300),
            px / np.maximum(px.sum(1, keepdims=True), 1e-300), B.astype(np.float64))


def _cfg(overrides) -> AuditConfig:
    from curator.config import from_dict
    from pipelines.recipes import parse_override

    return from_dict(AuditConfig, {k: v for _, k, v in (parse_override("audit." + o) for o in overrides)}, where="audit")


def run(args) -> dict:
    X, idx, human, edir = _load(args)
    t = human["clean_label"]
    cfg = _cfg(args.overrides)
    rows = []
    for ls in [s.strip() for s in args.label_sets.split(",") if s.strip()]:
        if ls not in LABEL_KEYS:
            raise ValueError(f"unknown CIFAR-10N label set {ls!r}; known: {sorted(LABEL_KEYS)}")
        y = human[LABEL_KEYS[ls]]
        t0 = time.perf_counter()
        res = aggregate(X, y, 10, cfg)
        tb = res.table
        classes = class_findings(res.posterior, y, tb["is_label_issue"].to_numpy(), [str(c) for c in range(10)],
                                 tail_min_clean=cfg.tail_min_clean)   # as audit_stage writes classes.parquet
        sizes = classes["estimated_true_size"].to_numpy()
        rows.append(_row("curator", ls, t, y, tb["label_issue_score"].to_numpy(), tb["is_label_issue"].to_numpy(),
                         tb["suggested_label"].to_numpy(), sizes, time.perf_counter() - t0))
        LOG.info("%s", rows[-1])
        if not args.skip_cleanlab:
            from cleanlab.count import estimate_joint
            from cleanlab.filter import find_label_issues
            from cleanlab.rank import get_label_quality_scores

            t0 = time.perf_counter()
            P = _cv_logreg(X, y, cfg.seed)
            flag = find_label_issues(y, P)
            score = 1 - get_label_quality_scores(y, P)
            sizes = estimate_joint(y, P).sum(0) * len(y)   # joint[given, true] -> true marginal
            rows.append(_row("cleanlab", ls, t, y, score, flag, P.argmax(1), sizes, time.perf_counter() - t0))
            LOG.info("%s", rows[-1])
        if args.oracle:
            t0 = time.perf_counter()
            post, px, B = oracle_posterior(X, t, y, 10, seed=cfg.seed)
            rows_ = np.arange(len(y))
            flag = post[rows_, y] < 0.5
            other = (B if cfg.tail_suggestions else post).copy()  # the audit's suggestion rule, on perfect inputs
            other[rows_, y] = -1.0
            sugg = np.where(flag, other.argmax(1), px.argmax(1))  # the audit's rule (unflagged: the image's class)
            rows.append(_row("oracle ceiling", ls, t, y, 1.0 - post[rows_, y], flag, sugg,
                             np.bincount(post.argmax(1), minlength=10), time.perf_counter() - t0))
            LOG.info("%s", rows[-1])
    return {"variant": args.variant, "embeddings": edir, "n_samples": int(len(X)), "audit_config": cfg.to_dict(),
            "rows": rows}
