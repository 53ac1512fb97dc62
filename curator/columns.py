"""The column contract: every column of ``signals.parquet`` and ``audit.parquet``, declared once.

Each `Column` says which table it belongs to, which way is suspicious (``direction``), its range and
one plain sentence for people. The explorer's explanations, `curator.audit.evaluate`'s per-signal
orientation and the column tables in ``docs/signals.md`` / ``docs/audit.md`` all read this module;
the stages that write the two tables check their columns against it (`check_columns`), so a column
nobody declared cannot be written. The module imports nothing from curator and has no side effects.

``hygiene.parquet`` (the hygiene stage, `curator.hygiene`): the image properties are declared here; every
hygiene check declares its own columns (``is_<kind>_issue`` and its measurements) in its module, and the
registry `curator.hygiene.registry` adds them with `declare` when it is imported. Its measurements are signals
(copied into ``signals.parquet``) and its flags are the issue kinds of ``audit.parquet``.

Robust heads contribute the same four columns each (``<head>_prob_label``, ``_pred``, ``_margin``,
``_loss``, `head_columns`) and any of their own; the head table `curator.heads.registry.HEADS` (the one list of
head names) declares them with `declare` when it is imported. Adding a head touches its own module and its one
line in that table.
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


#: the four columns every head writes, <head>_<suffix>: (suffix, direction, range, explanation)
_HEAD_COMMON = (
    ("prob_label", "higher_is_clean", "[0, 1]", "the head's probability of the given label (trained on every sample, "
                                                "so it partly echoes the label)."),
    ("pred", "categorical", "class index", "the head's predicted class."),
    ("margin", "higher_is_clean", "real", "given-label logit minus the best other logit, mean over the last epochs "
                                          "(negative = the head prefers another class)."),
    ("loss", "higher_is_issue", "[0, inf)", "the head's training loss of the sample, mean over the last epochs."),
)

_S, _A, _SA = ("signals",), ("audit",), ("signals", "audit")
_KNN = "kNN graph of the embeddings (RUN/knn.npz)"
_CL = "confident learning on the out-of-fold probe (RUN/oof_probs.npy)"
_AUDIT = "audit (curator.audit.aggregate)"
_IMG = "image properties, measured in the image pass (curator.data.properties)"
_FUSED = "audit fused with the hygiene checks (curator.hygiene.fuse)"
_HS = ("hygiene", "signals")

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
    Column("issue_kinds", _A, "info", "text",
           "Every kind of issue the sample has, comma-separated: label, duplicate, leak, quality, outlier "
           "(empty = none). 'label,quality' (a label issue on a bad image) calls for another decision than "
           "'label' alone.", _FUSED),
    # the audit's decisions (curator.audit.aggregate)
    Column("label_issue_score", _A, "higher_is_issue", "[0, 1]",
           "Probability that the given label is wrong, 1 − p(label | image, label), from the audit's posterior (under "
           "weak evidence the posterior believes only the noise rate the evidence supports, so the scores are low "
           "and the flags are the highest of them).", _AUDIT),
    Column("is_label_issue", _A, "higher_is_issue", "bool",
           "The audit flags the sample as probably mislabelled: score above the threshold (0.5 by default; under weak "
           "evidence, the highest scores of a review list sized by the noise the evidence supports), or an "
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


def head_columns(head: str, who: str, own: tuple[tuple[str, str, str, str], ...] = ()) -> list[Column]:
    """The columns of head `head` (`who` = how people call it): the common four, then its `own` (name, direction,
    range, explanation). The head table (`curator.heads.registry.HEADS`) declares them with `declare`."""
    out = [Column(f"{head}_{suffix}", _S, direction, rng, f"{who[0].upper()}{who[1:]}: {text}", who)
           for suffix, direction, rng, text in _HEAD_COMMON]
    return out + [Column(name, _S, direction, rng, text, who) for name, direction, rng, text in own]


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

#: the contract: the columns declared here, then those of the plug-ins (heads, hygiene checks) as their registries
#: declare them
COLUMNS: dict[str, Column] = {c.name: c for c in (*_BASE, *_REPORT)}
_OWN = frozenset(COLUMNS)


def declare(columns: Iterable[Column]) -> None:
    """Add plug-in columns (a hygiene check's) to the contract; declaring a name twice differently is an error."""
    for c in columns:
        if c.name in COLUMNS and COLUMNS[c.name] != c:
            raise ValueError(f"column {c.name!r} is declared twice, differently: {COLUMNS[c.name]} and {c}")
        COLUMNS[c.name] = c


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
    own = [c for c in COLUMNS.values() if c.name in _OWN]
    plugins = sorted((c for c in COLUMNS.values() if c.name not in _OWN), key=lambda c: c.source)  # stable
    for c in own + plugins:
        if table in c.tables:
            lines.append(f"| `{c.name}` | {c.direction_words} | {c.range} | {c.explanation} | {c.source} |")
    return "\n".join(lines)


def fill_docs(text: str) -> str:
    """`text` with every ``<!-- columns:TABLE -->`` … ``<!-- /columns:TABLE -->`` block replaced by
    `markdown_table(TABLE)`: ``python -m curator.signals.registry docs/signals.md docs/audit.md`` rewrites the docs
    (run there, so that the heads' and the hygiene checks' columns are declared too)."""
    import re

    def block(m: re.Match) -> str:
        return f"<!-- columns:{m.group(1)} -->\n{markdown_table(m.group(1))}\n<!-- /columns:{m.group(1)} -->"

    return re.sub(r"<!-- columns:(signals|audit) -->.*?<!-- /columns:\1 -->", block, text, flags=re.S)
