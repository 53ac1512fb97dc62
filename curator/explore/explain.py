"""Plain explanations of every column the explorer shows.

Signals are declared by the modules that compute them (`curator.signals.spec.declare` in
curator.signals, curator.heads, curator.audit); this module imports those packages so the
declarations are registered, and falls back to the contract's
wording (docs of RUN/signals.parquet and RUN/audit.parquet) for columns nobody declared, including
the per-head pattern ``{head}_prob_label`` / ``_pred`` / ``_margin`` / ``_loss``.
"""
from __future__ import annotations

import importlib
import logging
import pkgutil
import re
from dataclasses import dataclass

from curator.signals.spec import SIGNAL_SPECS, SignalSpec

LOG = logging.getLogger(__name__)

HEAD_NAMES = {"ce": "cross-entropy", "la": "logit-adjusted", "lasl": "LA+SuperLoss", "cbs": "CBS+RRS balanced",
              "cb": "class-balanced", "focal": "focal", "ldam": "LDAM", "gdw": "GDW", "fsr": "FSR"}

_AUDIT = {
    "label_issue_score": ("higher_is_issue", "[0, 1]", "How likely the given label is wrong, combining every signal (1 = almost surely wrong).", "audit"),
    "is_label_issue": ("higher_is_issue", "bool", "The audit flags this sample as probably mislabelled.", "audit"),
    "suggested_label": ("categorical", "class", "The class the audit believes is correct.", "audit"),
    "suggested_label_confidence": ("info", "[0, 1]", "How sure the audit is of the suggested label.", "audit"),
    "rank": ("info", "1..N", "Position in the list of likely label errors (1 = most suspicious).", "audit"),
    "shot_group": ("categorical", "many/medium/few", "Size of the given class: many >= 100, medium 20-100, few <= 20 samples.", "audit"),
    "label": ("categorical", "class", "The label the dataset gives this sample.", "dataset"),
    "true_label": ("categorical", "class", "The true label, when the dataset knows it (-1 = unknown).", "dataset"),
    "lasl_sigma": ("higher_is_clean", "(0, inf)", "SuperLoss confidence sigma*: low when the sample stays hard to fit (noisy or rare).", "LA+SuperLoss head"),
    "gdw_weight": ("higher_is_clean", "[0, inf)", "GDW weight of the given class: GDW lowers it for samples it believes mislabelled.", "GDW head"),
    "gdw_suggested_label": ("categorical", "class", "The class whose GDW weight rose most: where GDW thinks the sample belongs.", "GDW head"),
    "fsr_meta_margin": ("higher_is_clean", "real", "FSR meta-margin: how much a step on the clean dictionary helps this sample (low = suspicious).", "FSR head"),
    "fsr_weight": ("higher_is_clean", "[0, inf)", "FSR sample weight from the meta-gradient (low = down-weighted as noisy).", "FSR head"),
    "fsr_in_dictionary": ("higher_is_clean", "bool", "Chosen by FSR for its small class-balanced set of trusted samples.", "FSR head"),
    "fsr_pseudo_label": ("categorical", "class", "FSR's momentum re-label (its running belief of the true class).", "FSR head"),
    "semi_pseudo_label": ("categorical", "class", "Self-training pseudo-label (paper 001).", "self-training"),
    "semi_pseudo_confidence": ("info", "[0, 1]", "Confidence of the self-training pseudo-label.", "self-training"),
    "knn_agreement": ("higher_is_clean", "[0, 1]", "Share of the nearest neighbours (weighted by similarity) that carry the same label.", "kNN (FAISS)"),
    "knn_suggested_label": ("categorical", "class", "The label most nearest neighbours carry.", "kNN (FAISS)"),
    "knn_suggested_share": ("info", "[0, 1]", "Share of the neighbours voting for the kNN suggested label.", "kNN (FAISS)"),
    "knn_kth_distance": ("higher_is_issue", "[0, 2]", "Distance to the k-th nearest neighbour: high for outliers.", "kNN (FAISS)"),
    "dup_group": ("info", "group id", "Near-duplicate group (-1 = none).", "kNN (FAISS)"),
    "dup_conflict": ("higher_is_issue", "bool", "Has a near-duplicate with a different label: an error in plain sight.", "kNN (FAISS)"),
    "cl_label_quality": ("higher_is_clean", "[0, 1]", "Cross-validated probability of the given label (confident learning, comparable to cleanlab).", "confident learning"),
    "cl_suggested_label": ("categorical", "class", "Confident-learning suggested label (cross-validated argmax).", "confident learning"),
    "cl_is_issue": ("higher_is_issue", "bool", "Flagged by the confident-learning off-diagonal rule.", "confident learning"),
}

_HEAD_PATTERNS = [
    (re.compile(r"^(\w+?)_prob_label$"), "higher_is_clean", "[0, 1]", "Probability the {head} head gives the given label (low = suspicious)."),
    (re.compile(r"^(\w+?)_pred$"), "categorical", "class", "The class the {head} head predicts."),
    (re.compile(r"^(\w+?)_margin$"), "higher_is_clean", "real", "Given-label logit minus the best other one, {head} head, last epochs (negative = the head prefers another class)."),
    (re.compile(r"^(\w+?)_loss$"), "higher_is_issue", "[0, inf)", "Loss of the {head} head on the given label, last epochs (high = hard or wrong)."),
]

_loaded = False


def load_declared_specs() -> dict[str, SignalSpec]:
    """Import the signal-producing packages so their `declare(...)` calls have run; return the registry."""
    global _loaded
    if not _loaded:
        for pkg_name in ("curator.signals", "curator.heads", "curator.audit"):
            try:
                pkg = importlib.import_module(pkg_name)
            except ImportError:
                continue
            for mod in pkgutil.iter_modules(pkg.__path__, pkg_name + "."):
                try:
                    importlib.import_module(mod.name)
                except Exception as exc:  # a half-written module must not break the explorer
                    LOG.warning("explorer: could not import %s for signal explanations: %s", mod.name, exc)
        _loaded = True
    return SIGNAL_SPECS


@dataclass(frozen=True)
class Explanation:
    name: str
    direction: str
    range: str
    text: str
    source: str

    @property
    def direction_words(self) -> str:
        return {"higher_is_clean": "higher = more likely clean", "higher_is_issue": "higher = more likely a label issue",
                "categorical": "a class", "info": "information"}.get(self.direction, self.direction)


def explain(column: str) -> Explanation:
    """The explanation of one column (declared spec first, then the contract's wording, then a generic line)."""
    specs = load_declared_specs()
    if column in specs:
        s = specs[column]
        return Explanation(s.name, s.direction, s.range, s.explanation, s.source)
    if column in _AUDIT:
        d, r, t, src = _AUDIT[column]
        return Explanation(column, d, r, t, src)
    for pattern, d, r, text in _HEAD_PATTERNS:
        m = pattern.match(column)
        if m and m.group(1) in HEAD_NAMES:
            name = HEAD_NAMES[m.group(1)]
            return Explanation(column, d, r, text.format(head=name), f"{name} head")
    return Explanation(column, "info", "", "A per-sample value recorded by the run.", "run")
