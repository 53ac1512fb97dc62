"""`curator bench detect-cifar10n`: curator's audit vs cleanlab on identical embeddings (BENCHMARKS.md).

For each CIFAR-10N label set, on the same embeddings (default: the shared development SimSiam
embeddings; ``--embeddings-dir`` points elsewhere):

- **curator**: the functions `curator audit` runs — `curator.evidence.compute_evidence` (the kNN graph, built
  once and shared by the label sets since it does not depend on labels, and the out-of-fold probe), then
  `curator.audit.aggregate.aggregate` and `curator.audit.classes.class_findings` — with the default recipe
  settings (``--set evidence.KEY=VALUE`` / ``--set audit.KEY=VALUE`` as on every command);
- **cleanlab**: its standard pipeline — 5-fold cross-validated scikit-learn ``LogisticRegression`` (defaults,
  on standardised embeddings) probabilities, then ``cleanlab.filter.find_label_issues`` for the flags,
  ``get_label_quality_scores`` for AUROC, argmax as suggestion, the confident-joint marginal as class sizes.

``--variant lt100`` uses the long-tailed subset (γ = 100 by true class) and its own embeddings.

``--oracle`` adds a ceiling row that no real method can reach: a head (`la`, logit-adjusted cross-entropy,
paper 000 eq. 1–2, from `curator.heads`) cross-fitted by `curator.evidence.crossfit` on the **true** labels,
combined with the **true** class prior and the **true** noise transition T[c, l] by Bayes' rule, flagged at 0.5,
suggestions by the audit's own rules. It measures how much the embeddings themselves allow.

``--pred-probs FILE`` (issue 20): the user's own out-of-fold probabilities (``{label_set}`` in the name: one file
per label set; .npy rows in the embeddings' order, columns the classes 0..9, or .parquet keyed by ``sample_id`` =
the row's CIFAR-10 training index): curator's audit with them in the probe's place — joined by the kNN graph of
the embeddings (row ``curator``) and alone (row ``curator (probs only)``) — against cleanlab's
``find_label_issues`` / ``get_label_quality_scores`` fed the same probabilities. ``--write-pred-probs DIR`` first
makes such probabilities: a plain (not class-balanced) logistic regression cross-fitted over 5 folds (`own_pred_probs`), written
as DIR/<label set>.npy, and then uses them.

``--crossfit-head NAME --crossfit-weight A`` measures whether a robust head would help the score (issue 10 item 2,
docs/audit.md): the head is cross-fitted on the given labels over the audit's own folds and its out-of-fold
probabilities are blended into the probe's, (1 − A)·probe + A·head, in every round.
"""
from __future__ import annotations

import argparse
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from curator.audit.aggregate import aggregate
from curator.audit.classes import class_findings
from curator.audit.evaluate import balanced_suggestion_accuracy, class_size_error, detection_metrics, tail_rescue
from curator.evidence import Evidence, compute_evidence, standardise
from curator.evidence.crossfit import crossfit, fold_assignment
from curator.evidence.evidence import compute_graph

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
                   help="add the ceiling row: a head trained on the true labels + the true noise transition")
    p.add_argument("--crossfit-head", default=None, help="blend this head, cross-fitted on the given labels, into the score")
    p.add_argument("--crossfit-weight", type=float, default=0.5, help="its share A in (1 − A)·probe + A·head")
    p.add_argument("--pred-probs", default=None, metavar="FILE",
                   help="your out-of-fold probabilities for the label set ({label_set} in the name: one file per set)")
    p.add_argument("--write-pred-probs", default=None, metavar="DIR",
                   help="cross-fit a logistic regression (5 folds) on each label set, write DIR/<set>.npy and use it as --pred-probs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a recipe value of [evidence] or [audit] (e.g. --set audit.rounds=1)")


def _load(args) -> tuple[np.ndarray, np.ndarray, dict, str]:
    from curator.data.adapters.cifarn import load_label_file

    data = Path(args.data_dir)
    sub = "embeddings-simsiam-r18-lt100" if args.variant == "lt100" else "embeddings-simsiam-r18"
    edir = Path(args.embeddings_dir) if args.embeddings_dir else data / sub
    X = np.load(edir / "train.npy", allow_pickle=False)
    idx = np.load(edir / "indices.npy", allow_pickle=False) if args.variant == "lt100" else np.arange(len(X))
    if len(idx) != len(X):
        raise ValueError(f"{edir}: {len(X)} embeddings but {len(idx)} indices")
    human = load_label_file(data / "CIFAR-10_human.pt")   # weights_only torch.load, numpy arrays allowed
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


def cleanlab_cv_probs(X: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    """cleanlab's standard inputs: 5-fold cross-validated scikit-learn LogisticRegression (its defaults) on
    standardised embeddings, (N, C) probabilities."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    cv = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    return cross_val_predict(model, np.asarray(X, np.float32), y, cv=cv, method="predict_proba")


def head_oof_probs(head: str, features: np.ndarray, labels: np.ndarray, n_classes: int, folds: np.ndarray, *,
                   epochs: int = 10, seed: int = 0) -> np.ndarray:
    """Out-of-fold probabilities (N, C) of a registry head cross-fitted over `folds` (curator.evidence.crossfit)."""
    import torch

    from curator.heads.config import HeadsConfig
    from curator.heads.registry import train_head

    cfg = HeadsConfig(heads=[head], epochs=epochs)

    def fit_predict(train: np.ndarray, test: np.ndarray, k: int) -> np.ndarray:
        res = train_head(head, features[train], labels[train], n_classes, cfg, seed=seed + k)
        with torch.no_grad():
            return torch.softmax(res.model(torch.from_numpy(features[test])), 1).float().cpu().numpy()

    return crossfit(fit_predict, folds, n_classes)


@dataclass
class BlendedEvidence(Evidence):
    """Evidence whose probe probabilities are blended with fixed out-of-fold head probabilities (a measurement)."""

    head_probs: np.ndarray | None = None
    head_weight: float = 0.0

    def refit(self, weights: np.ndarray, round_: int) -> np.ndarray:
        return (1 - self.head_weight) * super().refit(weights, round_) + self.head_weight * self.head_probs


def oracle_posterior(X: np.ndarray, true_label: np.ndarray, label: np.ndarray, n_classes: int, *,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(p(c | x, ỹ), p(c | x), B), each (N, C), from cheating inputs: B = out-of-fold probabilities of the `la`
    head fitted on the TRUE labels (a uniform-prior likelihood), times the true class prior (→ p(c | x)),
    times the true transition T[c, ỹ] (rows: true class, columns: given)."""
    F = standardise(X)
    B = head_oof_probs("la", F, true_label, n_classes, fold_assignment(true_label, 5, seed), epochs=20, seed=seed)
    B = B.astype(np.float64)
    prior = np.bincount(true_label, minlength=n_classes) / len(true_label)
    T = np.zeros((n_classes, n_classes))
    np.add.at(T, (true_label, label), 1.0)
    T /= np.maximum(T.sum(1, keepdims=True), 1.0)
    px = B * prior[None, :]
    post = px * T[:, label].T
    return (post / np.maximum(post.sum(1, keepdims=True), 1e-300),
            px / np.maximum(px.sum(1, keepdims=True), 1e-300), B)


def _configs(overrides: list[str]):
    from pipelines.recipes import load_recipe

    bad = [o for o in overrides if not o.startswith(("evidence.", "audit."))]
    if bad:
        raise ValueError(f"--set {bad[0]!r}: this benchmark reads only [evidence] and [audit] (e.g. audit.rounds=1)")
    rec = load_recipe("cifar10n", overrides=overrides)
    return rec.evidence, rec.audit


def own_pred_probs(X: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    """Out-of-fold probabilities (N, 10) of a plain multinomial logistic regression (softmax cross-entropy on the
    label histogram as it is, not the audit's class-balanced probe), 5 folds with their own seed, 300 Adam steps."""
    from curator.evidence.probe import ProbeSettings, oof_probs

    return oof_probs(standardise(X), y, 10, fold_assignment(y, 5, seed + 1), ProbeSettings(steps=300), balanced=False,
                     seed=seed + 1000)


def _pred_probs_rows(args, X, idx, y, t, ls, graph, ecfg, acfg) -> list[dict]:
    """curator with the given probabilities (with and without the kNN graph) and cleanlab fed the same ones."""
    from curator.evidence import evidence_from_pred_probs
    from curator.evidence.pred_probs import read_pred_probs

    names = [str(c) for c in range(10)]
    if args.write_pred_probs:
        path = Path(args.write_pred_probs) / f"{ls}.npy"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, own_pred_probs(X, y, args.seed).astype(np.float32))
        LOG.info("wrote out-of-fold probabilities %s", path)
    else:
        path = Path(args.pred_probs.replace("{label_set}", ls))
    P = read_pred_probs(path, np.asarray(idx).astype(str), names)
    out = []
    for method, emb, g in (("curator", X, graph), ("curator (probs only)", None, None)):
        t0 = time.perf_counter()
        ev = evidence_from_pred_probs(P, y, 10, emb, ecfg, seed=args.seed, graph=g)
        res = aggregate(ev, acfg)
        tb = res.table
        classes = class_findings(res.posterior, y, tb["is_label_issue"].to_numpy(), names,
                                 tail_min_clean=acfg.tail_min_clean)
        out.append(_row(method, ls, t, y, tb["label_issue_score"].to_numpy(), tb["is_label_issue"].to_numpy(),
                        tb["suggested_label"].to_numpy(), classes["estimated_true_size"].to_numpy(),
                        time.perf_counter() - t0) | {"grade": res.evidence.get("grade"),
                                                     "separability": res.evidence.get("separability")})
        LOG.info("%s", out[-1])
    if not args.skip_cleanlab:
        from cleanlab.count import estimate_joint
        from cleanlab.filter import find_label_issues
        from cleanlab.rank import get_label_quality_scores

        t0 = time.perf_counter()
        flag = find_label_issues(y, P)
        score = 1 - get_label_quality_scores(y, P)
        sizes = estimate_joint(y, P).sum(0) * len(y)
        out.append(_row("cleanlab", ls, t, y, score, flag, P.argmax(1), sizes, time.perf_counter() - t0))
        LOG.info("%s", out[-1])
    if args.oracle:
        post, px, B = oracle_posterior(X, t, y, 10, seed=args.seed)
        r = np.arange(len(y))
        flag = post[r, y] < 0.5
        other = (B if acfg.tail_suggestions else post).copy()
        other[r, y] = -1.0
        out.append(_row("oracle ceiling", ls, t, y, 1.0 - post[r, y], flag, np.where(flag, other.argmax(1), px.argmax(1)),
                        np.bincount(post.argmax(1), minlength=10), 0.0))
        LOG.info("%s", out[-1])
    out[0]["pred_probs"] = str(path)
    return out


def run(args) -> dict:
    X, idx, human, edir = _load(args)
    t = human["clean_label"]
    ecfg, acfg = _configs(args.overrides)
    t0 = time.perf_counter()
    graph = compute_graph(standardise(X), ecfg, seed=args.seed)      # label-free: built once for all label sets
    graph_seconds = time.perf_counter() - t0
    rows = []
    for ls in [s.strip() for s in args.label_sets.split(",") if s.strip()]:
        if ls not in LABEL_KEYS:
            raise ValueError(f"unknown CIFAR-10N label set {ls!r}; known: {sorted(LABEL_KEYS)}")
        y = human[LABEL_KEYS[ls]]
        t0 = time.perf_counter()
        if args.pred_probs or args.write_pred_probs:
            rows += _pred_probs_rows(args, X, idx, y, t, ls, graph, ecfg, acfg)
            continue
        ev = compute_evidence(X, y, 10, ecfg, seed=args.seed, graph=graph)
        if args.crossfit_head:
            hp = head_oof_probs(args.crossfit_head, ev.features, y, 10, ev.folds, seed=args.seed)
            a = args.crossfit_weight
            ev = BlendedEvidence(**{**ev.__dict__, "oof_probs": (1 - a) * ev.oof_probs + a * hp},
                                 head_probs=hp, head_weight=a)
        res = aggregate(ev, acfg)
        tb = res.table
        classes = class_findings(res.posterior, y, tb["is_label_issue"].to_numpy(), [str(c) for c in range(10)],
                                 tail_min_clean=acfg.tail_min_clean)   # as the audit stage writes classes.parquet
        rows.append(_row("curator", ls, t, y, tb["label_issue_score"].to_numpy(), tb["is_label_issue"].to_numpy(),
                         tb["suggested_label"].to_numpy(), classes["estimated_true_size"].to_numpy(),
                         time.perf_counter() - t0 + graph_seconds) | {"grade": res.evidence.get("grade"),
                                                                      "separability": res.evidence.get("separability")})
        LOG.info("%s", rows[-1])
        if not args.skip_cleanlab:
            from cleanlab.count import estimate_joint
            from cleanlab.filter import find_label_issues
            from cleanlab.rank import get_label_quality_scores

            t0 = time.perf_counter()
            P = cleanlab_cv_probs(X, y, args.seed)
            flag = find_label_issues(y, P)
            score = 1 - get_label_quality_scores(y, P)
            sizes = estimate_joint(y, P).sum(0) * len(y)   # joint[given, true] -> true marginal
            rows.append(_row("cleanlab", ls, t, y, score, flag, P.argmax(1), sizes, time.perf_counter() - t0))
            LOG.info("%s", rows[-1])
        if args.oracle:
            t0 = time.perf_counter()
            post, px, B = oracle_posterior(X, t, y, 10, seed=args.seed)
            rows_ = np.arange(len(y))
            flag = post[rows_, y] < 0.5
            other = (B if acfg.tail_suggestions else post).copy()  # the audit's suggestion rule, on perfect inputs
            other[rows_, y] = -1.0
            sugg = np.where(flag, other.argmax(1), px.argmax(1))  # the audit's rule (unflagged: the image's class)
            rows.append(_row("oracle ceiling", ls, t, y, 1.0 - post[rows_, y], flag, sugg,
                             np.bincount(post.argmax(1), minlength=10), time.perf_counter() - t0))
            LOG.info("%s", rows[-1])
    return {"variant": args.variant, "embeddings": edir, "n_samples": int(len(X)), "knn": graph.info,
            "graph_seconds": round(graph_seconds, 1), "evidence_config": ecfg.to_dict(), "audit_config": acfg.to_dict(),
            "rows": rows}
