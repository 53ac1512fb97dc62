"""The column contract: every column of ``signals.parquet`` and ``audit.parquet``, declared once.

Each `Column` says which table it belongs to, which way is suspicious (``direction``), its range and
one plain sentence for people. The explorer's explanations, `curator.audit.evaluate`'s per-signal
orientation and the column tables in ``docs/signals.md`` / ``docs/audit.md`` all read this module;
the stages that write the two tables check their columns against it (`check_columns`), so a column
nobody declared cannot be written. The module imports nothing from curator and has no side effects.

``hygiene.parquet`` (the hygiene stage, `curator.hygiene`) is declared here too: its measurements are
signals (copied into ``signals.parquet``) and its flags are the issue kinds of ``audit.parquet``.

Robust heads contribute the same four columns each (``<head>_prob_label``, ``_pred``, ``_margin``,
``_loss``), generated from `HEADS`; a head with columns of its own lists them in `HEAD_COLUMNS`.
Adding a head therefore touches its own module, one registry line and its lines here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Literal

Direction = Literal["higher_is_clean", "higher_is_issue", "higher_is_worse", "lower_is_worse", "categorical", "info"]
Table = Literal["signals", "audit", "hygiene", "classes", "metrics"]
DIRECTION_WORDS = {"higher_is_clean": "higher = more likely clean", "higher_is_issue": "higher = more likely a label issue",
                   "higher_is_worse": "higher = worse image or data (not about the label)",
                   "lower_is_worse": "lower = worse image or data (not about the label)",
                   "categorical": "a class or group", "info": "information"}
#: the kinds of issue a training sample can have (audit.parquet ``issue_kinds``, ``is_<kind>_issue``)
ISSUE_KINDS = ("label", "duplicate", "leak", "quality", "outlier")


@dataclass(frozen=True)
class Column:
    name: str
    tables: tuple[str, ...]   # "signals" and/or "audit"
    direction: Direction
    range: str                # e.g. "[0, 1]", "class index", "bool"
    explanation: str          # one sentence for people
    source: str               # what produced it

    @property
    def direction_words(self) -> str:
        return DIRECTION_WORDS[self.direction]


#: head name -> how people call it; every head writes the four columns of `_HEAD_COMMON`
HEADS: dict[str, str] = {
    "ce": "cross-entropy head", "la": "logit-adjusted head", "lasl": "LA+SuperLoss head",
    "cb": "class-balanced-loss head", "focal": "focal-loss head", "ldam": "LDAM-DRW head",
    "cbs": "CBS+RRS head (class-balanced classifier)", "gdw": "GDW head (paper 003)", "fsr": "FSR head (paper 004)",
    "semi": "self-training head (paper 001)",
}
_HEAD_COMMON = (
    ("prob_label", "higher_is_clean", "[0, 1]", "the head's probability of the given label (trained on every sample, "
                                                "so it partly echoes the label)."),
    ("pred", "categorical", "class index", "the head's predicted class."),
    ("margin", "higher_is_clean", "real", "given-label logit minus the best other logit, mean over the last epochs "
                                          "(negative = the head prefers another class)."),
    ("loss", "higher_is_issue", "[0, inf)", "the head's training loss of the sample, mean over the last epochs."),
)
#: columns a head writes besides the common four: (name, direction, range, explanation)
HEAD_COLUMNS: dict[str, tuple[tuple[str, str, str, str], ...]] = {
    "lasl": (("lasl_sigma", "higher_is_clean", "(0, e]",
              "SuperLoss confidence σ*: below 1 the sample's loss stayed above τ = log C (hard or mislabelled); "
              "mean over the last epochs."),),
    "gdw": (("gdw_weight", "higher_is_clean", "[0, ~1.2]",
             "GDW's instance weight ω_t of the given label (mean over the last epochs): how much the meta set wants "
             "this label learned; low on mislabelled samples."),
            ("gdw_suggested_label", "categorical", "class index",
             "The other class whose 'not this class' gradient GDW suppressed most: where the meta set thinks the "
             "sample belongs.")),
    "fsr": (("fsr_meta_margin", "higher_is_clean", "real (≈ [−1, 1])",
             "Momentum meta-margin: how much the sample's loss falls when the model learns FSR's trusted dictionary; "
             "negative = it contradicts the dictionary."),
            ("fsr_weight", "higher_is_clean", "[0, b] (1 = average)",
             "FSR's learned sample weight relative to the batch average (mean over the last epochs); 0 = excluded."),
            ("fsr_in_dictionary", "higher_is_clean", "bool",
             "FSR picked the sample for its class-balanced dictionary of trusted samples."),
            ("fsr_pseudo_label", "categorical", "class index",
             "Argmax of FSR's momentum re-label (moving average of the head's predictions).")),
    "semi": (("semi_pseudo_label", "categorical", "class index",
              "Class given by the self-trained student, which learned the distrusted samples from the robust head's "
              "pseudo-labels."),
             ("semi_pseudo_confidence", "info", "[0, 1]", "The student's probability of its suggested class."),
             ("semi_distrusted", "info", "bool",
              "The robust head distrusted the given label, so self-training treated the sample as unlabelled.")),
}

_S, _A, _SA = ("signals",), ("audit",), ("signals", "audit")
_KNN = "kNN graph of the embeddings (RUN/knn.npz)"
_CL = "confident learning on the out-of-fold probe (RUN/oof_probs.npy)"
_AUDIT = "audit (curator.audit.aggregate)"
_IMG = "image properties, measured in the image pass (curator.data.properties)"
_DUP = "duplicate check: content hash + kNN graph (curator.hygiene.duplicates)"
_HYG = "hygiene checks (curator.hygiene)"
_FUSED = "audit fused with the hygiene checks (curator.hygiene.fuse)"
_HS, _HA = ("hygiene", "signals"), ("hygiene", "audit")

_BASE = (
    Column("sample_id", ("signals", "audit", "hygiene"), "info", "text", "Stable id of the sample (from the dataset adapter).", "dataset"),
    Column("label", _SA, "categorical", "class index", "The label the dataset gives this sample.", "dataset"),
    Column("true_label", _S, "categorical", "class index or -1",
           "The true label, when the dataset knows it (-1 = unknown).", "dataset"),
    # neighbourhood (curator.signals.agreement)
    Column("knn_agreement", _S, "higher_is_clean", "[0, 1]",
           "Similarity-weighted share of the nearest neighbours that carry this sample's label.", _KNN),
    Column("knn_suggested_label", _S, "categorical", "class index",
           "The label most of the nearest neighbours carry (their weighted vote).", _KNN),
    Column("knn_suggested_share", _S, "info", "[0, 1]", "Weighted share of the neighbours' vote won by that label.", _KNN),
    Column("knn_kth_distance", _S, "higher_is_issue", "[0, 2]",
           "Cosine distance to the k-th nearest neighbour; large values mark isolated samples (outliers).", _KNN),
    # confident learning (curator.signals.confident)
    Column("cl_label_quality", _S, "higher_is_clean", "[0, 1]",
           "Out-of-fold probability the class-balanced linear probe gives to the given label (a probe that never saw "
           "this sample).", _CL),
    Column("cl_suggested_label", _S, "categorical", "class index",
           "The class the out-of-fold probe is confident about (confident-learning rule).", _CL),
    Column("cl_is_issue", _S, "higher_is_issue", "bool",
           "Confident learning counts this sample off the diagonal of the confident joint (likely mislabelled).", _CL),
    # hygiene: image properties (curator.data.properties), thresholds per dataset (curator.hygiene.thresholds)
    Column("width", _HS, "info", "pixels", "Width of the decoded image (NaN when images were not decoded).", _IMG),
    Column("height", _HS, "info", "pixels", "Height of the decoded image.", _IMG),
    Column("aspect_ratio", _HS, "info", "width / height", "Width divided by height; far from the dataset's own "
           "ratios = odd aspect ratio.", _IMG),
    Column("darkness", _HS, "higher_is_worse", "[0, 1]",
           "1 minus the 99th percentile of the pixels' brightness (luma): 1 = even the brightest pixels are black.", _IMG),
    Column("lightness", _HS, "higher_is_worse", "[0, 1]",
           "The 5th percentile of the pixels' brightness: 1 = even the darkest pixels are white (washed out).", _IMG),
    Column("sharpness", _HS, "lower_is_worse", "[0, ~4]",
           "Energy of the finest detail relative to the next coarser scale (variance of the Laplacian of the brightness "
           "over that of the image halved); low = blurry, independent of what the image shows or how dark it is.", _IMG),
    Column("entropy", _HS, "lower_is_worse", "[0, 8] bits",
           "Entropy of the brightness histogram: near 0 for blank or nearly empty images (low information).", _IMG),
    Column("colorfulness", _HS, "lower_is_worse", "[0, ~1]",
           "Hasler–Süsstrunk colourfulness: 0 for grayscale images (a problem only in a dataset of colour images).",
           _IMG),
    # hygiene: duplicates, leakage, outliers (curator.hygiene)
    Column("dup_group", _HS, "categorical", "group index or -1",
           "Group of identical (same pixels) or near-identical (calibrated cosine similarity) training samples; "
           "-1 when none.", _DUP),
    Column("dup_conflict", _HS, "higher_is_issue", "bool",
           "This sample has an identical or near-identical copy that carries a different label: an error in plain "
           "sight.", _DUP),
    Column("duplicate_type", _HS, "categorical", "exact / near / empty",
           "exact: another training image has exactly these pixels; near: only near-identical copies; empty: none.",
           _DUP),
    Column("duplicate_similarity", _HS, "higher_is_worse", "[-1, 1]",
           "Cosine similarity to the nearest other training sample (1 = identical copy).", _DUP),
    Column("leak_similarity", _HS, "higher_is_worse", "[-1, 1] or NaN",
           "Similarity of the closest test / validation image that duplicates this training image (1 = identical "
           "pixels); NaN when none does.", "leakage check (curator.hygiene.leakage)"),
    Column("outlier_distance", _HS, "higher_is_worse", "[0, 2]",
           "Mean cosine distance to the 5 nearest other samples: large = unlike anything else in the dataset.",
           "outlier check (curator.hygiene.outliers)"),
    Column("is_duplicate_issue", _HA, "higher_is_worse", "bool",
           "The sample is in a group of identical or near-identical training samples (dup_group).", _HYG),
    Column("is_leak_issue", _HA, "higher_is_worse", "bool",
           "An identical or near-identical copy of this training image is in the test or validation split "
           "(leakage: it inflates the test score); the pairs are in RUN/leakage.parquet.", _HYG),
    Column("is_quality_issue", _HA, "higher_is_worse", "bool",
           "At least one image-quality check fired (quality_issues says which).", _HYG),
    Column("quality_issues", _HA, "info", "text",
           "The image-quality checks that fired, e.g. 'dark,blurry' (dark, light, blurry, low_information, "
           "grayscale, odd_size, odd_aspect_ratio); each flags values far outside the dataset's own distribution.",
           _HYG),
    Column("is_outlier_issue", _HA, "higher_is_worse", "bool",
           "The sample is far from every other sample in embedding space (outlier_distance far above the "
           "dataset's typical value).", _HYG),
    Column("duplicate_of", _A, "info", "sample id or empty",
           "For a duplicate that a de-duplicated export drops: the member of its group that is kept.", _FUSED),
    Column("issue_kinds", _A, "info", "text",
           "Every kind of issue the sample has, comma-separated: label, duplicate, leak, quality, outlier "
           "(empty = none). 'label,quality' (a label issue on a bad image) calls for another decision than "
           "'label' alone.", _FUSED),
    # the audit's decisions (curator.audit.aggregate)
    Column("label_issue_score", _A, "higher_is_issue", "[0, 1]",
           "Probability that the given label is wrong, 1 − p(label | image, label), from the audit's posterior.", _AUDIT),
    Column("is_label_issue", _A, "higher_is_issue", "bool",
           "The audit flags the sample as probably mislabelled: score above the threshold (0.5 by default), or an "
           "identical / near-identical copy carries another label and the group's images look like another class "
           "than this sample's label (curator.hygiene.fuse).", _AUDIT),
    Column("suggested_label", _A, "categorical", "class index",
           "Flagged: the most likely other class; not flagged: the class the image itself looks like.", _AUDIT),
    Column("suggested_label_confidence", _A, "info", "[0, 1]",
           "The audit's posterior probability that the suggested label is the true class.", _AUDIT),
    Column("rank", _A, "info", "1..N", "Position in the list of likely label errors (1 = most suspicious).", _AUDIT),
    Column("shot_group", _A, "categorical", "many / medium / few",
           "Size group of the given label's class by its estimated true size: many ≥ 100, medium 21–99, few ≤ 20.",
           _AUDIT),
)


def _head_columns() -> list[Column]:
    out = []
    for head, who in HEADS.items():
        for suffix, direction, rng, text in _HEAD_COMMON:
            out.append(Column(f"{head}_{suffix}", _S, direction, rng, f"{who[0].upper()}{who[1:]}: {text}", who))
        for name, direction, rng, text in HEAD_COLUMNS.get(head, ()):
            out.append(Column(name, _S, direction, rng, text, who))
    return out


_CLS, _MET = ("classes",), ("metrics",)
_CLASSES_SRC = "per-class findings from the audit's posterior (curator.audit.classes)"
_EVAL = "evaluation against known truth (curator.audit.evaluate)"
#: classes.parquet (one row per class) and the report's evaluation table (metrics.json), for the report's glossary
_REPORT = (
    Column("class", _CLS, "categorical", "class index", "The class number.", _CLASSES_SRC),
    Column("class_name", _CLS, "info", "text", "The class's name.", _CLASSES_SRC),
    Column("labelled_count", _CLS, "info", "count", "How many training samples carry this label.", _CLASSES_SRC),
    Column("estimated_true_size", _CLS, "info", "count",
           "How many training samples truly belong to the class, as the audit estimates it: the samples whose most "
           "probable true class it is.", _CLASSES_SRC),
    Column("estimated_true_size_soft", _CLS, "info", "count",
           "The same estimate as a soft count (the sum of every sample's probability of the class); it over-counts "
           "small classes, because every sample leaks a little probability into them.", _CLASSES_SRC),
    Column("estimated_clean_count", _CLS, "info", "count",
           "How many of the samples labelled with the class really are of it (sum of their probability of the "
           "label).", _CLASSES_SRC),
    Column("estimated_noise_rate", _CLS, "higher_is_issue", "[0, 1]",
           "Share of the class's labels estimated wrong: 1 − estimated_clean_count / labelled_count.", _CLASSES_SRC),
    Column("n_flagged", _CLS, "info", "count", "Samples with this label flagged as label issues.", _CLASSES_SRC),
    Column("shot_group_labelled", _CLS, "categorical", "many / medium / few",
           "Size group by the label count (many ≥ 100, medium 21–99, few ≤ 20); shot_group uses the estimated true "
           "size instead.", _CLASSES_SRC),
    Column("at_risk", _CLS, "higher_is_issue", "bool",
           "Fewer estimated clean samples than the audit's tail_min_clean (20 by default): too few to learn or to "
           "check the class reliably.", _CLASSES_SRC),
    Column("top_confusion_true_class", _CLS, "categorical", "class index",
           "The other true class that most often hides under this label.", _CLASSES_SRC),
    Column("top_confusion_share", _CLS, "info", "[0, 1]",
           "Share of the class's labels estimated to belong to top_confusion_true_class.", _CLASSES_SRC),
    Column("most_often_mislabeled_as", _CLS, "categorical", "class index",
           "The label this class's samples most often wrongly carry.", _CLASSES_SRC),
    Column("true_size", _CLS, "info", "count", "How many training samples truly belong to the class (known truth).",
           _EVAL),
    Column("true_noise_rate", _CLS, "info", "[0, 1]", "Share of the class's labels that are wrong (known truth).", _EVAL),
    Column("auroc", _MET, "info", "[0, 1]",
           "How well label_issue_score ranks mislabelled samples above correct ones (0.5 = chance, 1 = perfect).", _EVAL),
    Column("precision", _MET, "info", "[0, 1]", "Share of flagged samples that truly are mislabelled.", _EVAL),
    Column("recall", _MET, "info", "[0, 1]", "Share of mislabelled samples that are flagged.", _EVAL),
    Column("f1", _MET, "info", "[0, 1]", "Harmonic mean of precision and recall.", _EVAL),
    Column("suggested_label_accuracy", _MET, "info", "[0, 1]",
           "Share of flagged, truly mislabelled samples whose suggested label is the true class.", _EVAL),
    Column("suggested_label_balanced_accuracy", _MET, "info", "[0, 1]",
           "The same, averaged over true classes so that every class counts equally.", _EVAL),
    Column("tail_rescue", _MET, "info", "[0, 1]",
           "Share of mislabelled samples whose true class has fewer than 100 samples that are flagged and get their "
           "true class as the suggestion: how well the audit gives tail classes their samples back.", _EVAL),
    Column("class_size_error", _MET, "info", "[0, inf)",
           "Mean over classes of |estimated_true_size − true size| / true size.", _EVAL),
)

COLUMNS: dict[str, Column] = {c.name: c for c in (*_BASE, *_head_columns(), *_REPORT)}


def column(name: str) -> Column | None:
    """The declaration of column `name`, or None when nothing declares it."""
    return COLUMNS.get(name)


def describe(name: str) -> Column:
    """The declaration of `name`, or a generic one for a column the contract does not know (e.g. of an old run)."""
    return COLUMNS.get(name) or Column(name, (), "info", "", "A per-sample value recorded by the run.", "run")


def undeclared(names: Iterable[str], table: Table) -> list[str]:
    """Names in `names` that the contract does not declare for `table`."""
    return [n for n in names if n not in COLUMNS or table not in COLUMNS[n].tables]


def check_columns(names: Iterable[str], table: Table) -> None:
    """Raise ValueError naming every column of `table` that the contract does not declare."""
    bad = undeclared(list(names), table)
    if bad:
        raise ValueError(f"{table}.parquet would get column(s) {bad} that curator/columns.py does not declare "
                         "for it; declare them there (name, direction, range, explanation)")


def markdown_table(table: Table) -> str:
    """The columns of `table` as a Markdown table (docs/signals.md and docs/audit.md hold this text)."""
    lines = ["| column | direction | range | meaning | from |", "|---|---|---|---|---|"]
    for c in COLUMNS.values():
        if table in c.tables:
            lines.append(f"| `{c.name}` | {c.direction_words} | {c.range} | {c.explanation} | {c.source} |")
    return "\n".join(lines)


def fill_docs(text: str) -> str:
    """`text` with every ``<!-- columns:TABLE -->`` … ``<!-- /columns:TABLE -->`` block replaced by
    `markdown_table(TABLE)`: ``python -m curator.columns docs/signals.md docs/audit.md`` rewrites the docs."""
    import re

    def block(m: re.Match) -> str:
        return f"<!-- columns:{m.group(1)} -->\n{markdown_table(m.group(1))}\n<!-- /columns:{m.group(1)} -->"

    return re.sub(r"<!-- columns:(signals|audit) -->.*?<!-- /columns:\1 -->", block, text, flags=re.S)


if __name__ == "__main__":
    import sys
    from pathlib import Path

    for arg in sys.argv[1:]:
        path = Path(arg)
        path.write_text(fill_docs(path.read_text(encoding="utf-8")), encoding="utf-8")
