"""Sanity diagnostics of an audit: can the embeddings tell the classes apart at all?

Label noise and uninformative embeddings look the same to any audit that learns from the noisy labels:
in both cases an image-only classifier disagrees with many given labels. A run whose embeddings barely
separate the classes (e.g. pre-training stopped after a few epochs) therefore flags most of a *clean*
dataset. The audit cannot tell the two apart, but it can say so: when more than half of the labels are
believed wrong, `audit_diagnostics` returns a warning that names both explanations and the numbers behind it,
which the CLI prints, ``diagnostics.json`` keeps and the report shows at the top.

Beyond that one alarm, every audit carries an **evidence grade** (`curator.audit.grade`: strong / moderate /
weak, with its numbers and what the representation was) under ``evidence`` in ``diagnostics.json``, and
`evidence_sentence` turns it into the words the CLI summary, the report's top and the explorer's overview show;
a weak grade is also a warning, so it appears wherever warnings do.
"""
from __future__ import annotations

import numpy as np

FLAGGED_SHARE_WARNING = 0.5  # more labels believed wrong than right


def audit_diagnostics(labels: np.ndarray, class_posterior: np.ndarray, flags: np.ndarray, *,
                      evidence: dict | None = None, representation: dict | None = None,
                      extra_warnings: list[str] | None = None) -> dict:
    """labels (N,) given labels; class_posterior (N, C) p(c | x) ignoring the label; flags (N,) bool.

    Returns ``flagged_share``, ``label_agreement`` (share of samples whose image-only most probable class is the
    given label), ``chance_agreement`` (the largest class share: what always guessing that class agrees) and
    ``warnings`` (a list of sentences, empty when nothing looks wrong); with `evidence` (the grade of
    `curator.audit.grade.grade_evidence`) also ``evidence``: the grade, its numbers, `representation` and its
    ``summary`` sentence; `extra_warnings` (e.g. in-sample --pred-probs) are appended to the warnings.
    """
    y = np.asarray(labels, np.int64)
    n = len(y)
    if n == 0:
        return {"flagged_share": 0.0, "label_agreement": None, "chance_agreement": None, "warnings": []}
    flagged = float(np.mean(np.asarray(flags, bool)))
    agreement = float(np.mean(np.asarray(class_posterior).argmax(1) == y))
    chance = float(np.bincount(y).max() / n)
    warnings = []
    if flagged > FLAGGED_SHARE_WARNING:
        warnings.append(
            f"{100 * flagged:.0f}% of the labels are flagged as wrong. Either most labels really are wrong, or the "
            f"embeddings do not separate the classes: ignoring the labels, the audit's most probable class agrees "
            f"with the given label for only {100 * agreement:.0f}% of samples (always guessing the largest class: "
            f"{100 * chance:.0f}%). Check the embeddings before acting on these flags (the pre-training kNN monitor "
            f"in the log; more pre-training epochs; or --embeddings from a stronger model).")
    out = {"flagged_share": flagged, "label_agreement": agreement, "chance_agreement": chance, "warnings": warnings}
    if evidence is not None:
        ev = dict(evidence, representation=representation or {})
        ev["summary"] = evidence_sentence(ev, n_flagged=int(np.sum(flags)), n=n)
        out["evidence"] = ev
        if ev.get("grade") == "weak":
            warnings.insert(0, ev["summary"])
    warnings.extend(extra_warnings or [])
    return out


def _representation_words(rep: dict) -> str:
    kind = rep.get("kind")
    knn = rep.get("knn_monitor")
    mon = f", kNN monitor {knn:.2f}" if isinstance(knn, (int, float)) else ""
    return {"patch_kmeans": f"patch k-means features (CPU, no training{mon})",
            "ssl": f"self-supervised features trained from scratch ({rep.get('method') or 'SSL'}{mon})",
            "pretrained": f"pretrained features ({rep.get('weights') or 'given weights'}{mon})",
            "embeddings": "your embeddings (--embeddings)",
            "pred_probs": "your model's predicted probabilities (--pred-probs)"}.get(kind, "the run's features")


#: what was measured at each grade (docs/audit.md, "Evidence grade"; BENCHMARKS.md): share of flags that were
#: real label errors, with the data it was measured on
GRADE_PRECISION = {
    "strong": " Measured: on long-tailed CIFAR-10N with SimSiam embeddings (kNN 0.75) about 3 in 5 flags were real errors "
              "at 8% noise and 4 in 5 at 17% (BENCHMARKS.md).",
    "moderate": " Measured: on CIFAR-10N with SimSiam embeddings (kNN 0.75) about 4 in 7 flags were real errors at 9% "
                "noise and 7 in 8 at 40%; with a small pretrained network (EfficientNet-Lite0) on 32-px CIFAR images "
                "about 2 in 5 at 8% noise and 1 in 2 at 15%, and about 10% of a folder whose labels were all correct was "
                "flagged (BENCHMARKS.md).",
    "weak": " Measured: on 2,000 CIFAR-10 images with patch k-means features and 8% of labels wrong, 1 in 4 to 5 "
            "flags was a real error (docs/audit.md).",
}

#: how a person measures the flags' precision on their own data (curator.audit.spot_check)
SPOT_CHECK = (" To measure the flags' precision on your data, answer a random sample of them on the explorer's "
              "Estimate precision page (a spot check: the share of real errors with its interval).")


def evidence_sentence(ev: dict, *, n_flagged: int, n: int) -> str:
    """The grade in words a person acts on."""
    grade = ev.get("grade", "weak")
    what = _representation_words(ev.get("representation") or {})
    a, sep, nu = ev.get("probe_label_agreement"), ev.get("separability"), ev.get("supported_noise_rate")
    how = ("the model and the kNN vote name the same class for" if ev.get("separability_measure") == "probe_knn_agreement"
           else "the model's mean top probability is")
    raw, chance = ev.get("separability_raw", sep), ev.get("separability_chance", 0.0)
    nums = (f"{what}: the out-of-fold predictions agree with the given labels for {100 * a:.0f}% of samples, "
            f"separability {sep:.2f} ({how} {100 * raw:.0f}%, {100 * chance:.0f}% by chance)"
            if None not in (a, sep, nu, raw, chance) else f"the evidence is {what}")
    kind = (ev.get("representation") or {}).get("kind")
    network = "a larger pretrained network (--backbone)" if kind == "pretrained" else \
        "--embeddings from a pretrained network"
    better = ("a stronger model behind --pred-probs (e.g. a pretrained network fine-tuned with cross-validation)"
              if kind == "pred_probs" else
              f"--pred-probs from your own cross-validated model, {network}, or self-supervised pre-training on a GPU")
    if grade == "strong":
        return (f"Evidence: strong — {nums}. The flags are the best this audit gives; spot-check a sample before "
                f"relabelling.{GRADE_PRECISION['strong']}{SPOT_CHECK}")
    if grade == "moderate":
        return (f"Evidence: moderate — {nums}. Review the flags before acting on them."
                f"{GRADE_PRECISION['moderate']}{SPOT_CHECK} For stronger evidence: {better}.")
    if not ev.get("informative", True):
        return (f"Evidence: weak — {nums}. Under this evidence the given labels score no better than random classes: "
                f"it carries no information about which labels are wrong, so nothing is flagged. For evidence: {better}.")
    before = ev.get("flagged_before_cap")
    nb = ev.get("believed_noise_rate", nu)
    capped = (f" Curator therefore flags only {n_flagged} of {n} samples: at most 3 x the {100 * nb:.1f}% label noise it "
              f"allows for (the evidence supports {100 * nu:.1f}%; at least 3% is assumed, as in most real datasets), "
              f"where {before} would pass the threshold. Evidence this weak cannot see labels swapped between "
              f"look-alike classes, so the real noise may be higher." if before is not None and before > n_flagged
              else "")
    ceiling = (f" Patch k-means features grade weak whatever their separability (the separability alone would grade "
               f"them {ev['grade_measured']}): on every CIFAR-10 folder measured, at most 1 in 3 of their flags was a "
               f"real error (BENCHMARKS.md)." if ev.get("grade_ceiling") and kind == "patch_kmeans" else "")
    return (f"Evidence: weak — {nums}; it cannot tell label errors from features that do not separate the classes.{ceiling}{capped}"
            f" These flags are rough: treat them as a list to review, not as label errors.{GRADE_PRECISION['weak']}"
            f"{SPOT_CHECK}"
            f" For better evidence: {better}.")
