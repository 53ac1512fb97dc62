"""report.html: a self-contained summary of an audit (plots embedded as base64 PNG, matplotlib Agg).

With the hygiene stage's outputs (RUN/hygiene.json, RUN/leakage.parquet) the report also counts every kind
of issue (label, duplicate, leak, quality, outlier; `curator.hygiene.counts`), says which threshold each
check used and which checks were skipped and why, and lists the training ↔ test / validation pairs.
"""
from __future__ import annotations

import base64
import html
import io
import logging

import numpy as np
import pandas as pd

LOG = logging.getLogger(__name__)


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return f'<img alt="plot" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


#: what the per-class noise estimate means under each evidence grade (docs/audit.md, "Evidence grade"): shown above
#: the report's noise plot and its classes at risk. Under moderate evidence the soft confident joint also counts the
#: images the evidence cannot place as noise (BENCHMARKS.md, "CPU image folder": 2,000 CIFAR-10 images, all labels
#: correct, EfficientNet-Lite0 features: 6-31 % per class)
NOISE_CAVEAT = {
    "weak": "Weak evidence: each class's estimated noise is held to the noise the evidence supports; the flags are a "
            "list to review.",
    "moderate": "Moderate evidence: each class's estimated noise also counts the images the evidence cannot tell "
                "apart, so it reads high (on 2,000 CIFAR-10 images whose labels were all correct, a small pretrained "
                "network's run estimated 6-31% per class). Read it as where to look first, not as a measured rate.",
}


def _figures(audit: pd.DataFrame, classes: pd.DataFrame, true_label: np.ndarray | None,
             grade: str | None = None) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = []
    x = np.arange(len(classes))
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.bar(x - 0.2, classes["labelled_count"].clip(lower=0.5), 0.4, label="labelled")
    ax.bar(x + 0.2, classes["estimated_true_size"].clip(lower=0.5), 0.4, label="estimated true size")
    if "true_size" in classes:
        ax.plot(x, classes["true_size"].clip(lower=0.5), "k_", markersize=14, label="true size")
    ax.set_yscale("log"), ax.set_xticks(x, classes["class_name"], rotation=45, ha="right"), ax.legend()
    ax.set_ylabel("samples (log)"), ax.set_title("Class sizes: labelled vs estimated")
    out.append(("Class histogram", _png(fig)))

    fig, ax = plt.subplots(figsize=(8, 3))
    s, f = audit["label_issue_score"].to_numpy(), audit["is_label_issue"].to_numpy(bool)
    bins = np.linspace(0, 1, 41)
    ax.hist(s[~f], bins, alpha=0.6, label="not flagged"), ax.hist(s[f], bins, alpha=0.6, label="flagged")
    if true_label is not None:
        wrong = true_label != audit["label"].to_numpy()
        ax.hist(s[wrong], bins, histtype="step", color="k", label="truly mislabeled")
    ax.set_yscale("log"), ax.set_xlabel("label_issue_score"), ax.legend(), ax.set_title("Score distribution")
    out.append(("Score distributions", _png(fig)))

    fig, ax = plt.subplots(figsize=(8, 3))
    lab = audit["label"].to_numpy(np.int64)
    ok = (lab >= 0) & (lab < len(classes))
    flagged_share = (np.bincount(lab[ok], weights=f[ok], minlength=len(classes))
                     / np.maximum(np.bincount(lab[ok], minlength=len(classes)), 1))
    ax.bar(x - 0.2, classes["estimated_noise_rate"], 0.4, label="estimated noise (model)")
    ax.bar(x + 0.2, flagged_share, 0.4, label="flagged share")
    if "true_noise_rate" in classes:
        ax.plot(x, classes["true_noise_rate"], "k_", markersize=14, label="true")
    ax.set_xticks(x, classes["class_name"], rotation=45, ha="right"), ax.set_ylim(0, 1), ax.legend()
    ax.set_title({"weak": "Noise rate per labelled class — weak evidence: held to the noise the evidence supports",
                  "moderate": "Noise rate per labelled class — moderate evidence: the estimate reads high"}
                 .get(grade, "Noise rate per labelled class"), fontsize=9)
    out.append(("Per-class noise", _png(fig)))

    if true_label is not None:
        from sklearn.metrics import precision_recall_curve

        wrong = true_label != audit["label"].to_numpy()
        if 0 < wrong.sum() < len(wrong):
            p, r, _ = precision_recall_curve(wrong, s)
            fig, ax = plt.subplots(figsize=(4.5, 4))
            ax.plot(r, p), ax.set_xlabel("recall"), ax.set_ylabel("precision"), ax.set_title("Precision–recall vs truth")
            fp = (wrong & f).sum() / max(f.sum(), 1)
            ax.plot([(wrong & f).sum() / wrong.sum()], [fp], "ro", label="flag threshold"), ax.legend()
            out.append(("Precision–recall", _png(fig)))
    return out


def _table(df: pd.DataFrame, images: dict[str, tuple[str, dict[str, str]]] | None = None) -> str:
    """An HTML table in a box that scrolls sideways inside the page when it is wider than the page (1,200 px).

    `images` maps a new column's name to (the id column it shows, {id: data URI}); such a column comes first and
    shows a small inline thumbnail. Every other cell is escaped (data never becomes markup)."""
    if not images:
        body = df.to_html(index=False, float_format=lambda v: f"{v:.3f}", border=0, classes="t")
        return f'<div class="scroll">{body}</div>'
    shown = df.copy()
    for col in shown.columns:
        shown[col] = [html.escape(f"{v:.3f}" if isinstance(v, (float, np.floating)) else str(v)) for v in shown[col]]
    for i, (name, (key, uris)) in enumerate(images.items()):
        shown.insert(i, name, [f'<img class="thumb" alt="" src="{uris[k]}">' if k in uris else ""
                               for k in df[key].astype(str)])
    body = shown.to_html(index=False, border=0, classes="t", escape=False)
    return f'<div class="scroll">{body}</div>'


def glossary(columns: list[str]) -> str:
    """A definition list for every column shown, from the column contract (curator.columns)."""
    from curator.columns import describe

    items = []
    for name in dict.fromkeys(columns):
        c = describe(name)
        items.append(f"<dt><code>{html.escape(name)}</code></dt><dd>{html.escape(c.explanation)}"
                     + (f" <span class='dir'>({html.escape(c.direction_words)})</span>" if c.direction not in ("info",) else "")
                     + "</dd>")
    return "<details class='glossary'><summary>What the columns mean</summary><dl>" + "".join(items) + "</dl></details>"


def tail_sentences(classes: pd.DataFrame, metrics: dict | None) -> list[str]:
    """One plain sentence per tail class (few / medium shot group) whose size estimate or detection is poor,
    and per shot group whose detection is poor, so the tail's failure is said, not only tabulated."""
    out = []
    groups = [c for c in ("shot_group", "shot_group_labelled") if c in classes.columns]
    tail = classes[np.any([classes[c].isin(["few", "medium"]).to_numpy() for c in groups], axis=0)] if groups \
        else classes.iloc[:0]
    for r in tail.itertuples():
        name = html.escape(str(r.class_name))
        if "true_size" in classes.columns and r.true_size > 0:
            err = (r.estimated_true_size - r.true_size) / r.true_size
            if abs(err) > 0.5:
                out.append(f"Class {name} ({r.shot_group}): the audit estimates {int(r.estimated_true_size)} samples "
                           f"truly belong to it, but {int(r.true_size)} do ({'under' if err < 0 else 'over'}-counted by "
                           f"{abs(err):.0%}); its flags and suggestions are unreliable.")
        if bool(getattr(r, "at_risk", False)):
            out.append(f"Class {name}: only {r.estimated_clean_count:.1f} clean samples estimated (fewer than needed to "
                       f"learn it reliably); review its {int(r.labelled_count)} labelled samples by hand and collect more.")
    for group, m in ((metrics or {}).get("per_shot") or {}).items():
        auroc, prec = m.get("auroc"), m.get("precision")
        if (auroc is not None and auroc < 0.7) or (prec is not None and prec < 0.5 and m.get("n_mislabeled", 0)):
            out.append(f"In the {html.escape(str(group))} shot group detection is poor: "
                       + ", ".join(f"{k} {m[k]:.2f}" for k in ("auroc", "precision", "recall") if m.get(k) is not None)
                       + f" on {m.get('n_mislabeled', '?')} mislabelled of {m.get('n', '?')} samples; do not trust its "
                       "flags without review.")
    return out


def _hygiene_section(audit: pd.DataFrame, hygiene: dict | None, leakage: pd.DataFrame | None, max_pairs: int,
                     thumbs: dict[str, str] | None = None) -> list[str]:
    from curator.hygiene.counts import check_sections, kind_counts, label_issue_split

    kinds = kind_counts(audit)
    if len(kinds) <= 1 and not hygiene:
        return []
    parts = ["<h2>Issues by kind</h2><p>A sample can have several kinds; <em>also_label</em> counts those that are "
             "label issues too (a label issue on a dark, blurry or duplicated image calls for another decision).</p>",
             _table(kinds)]
    split = label_issue_split(audit)
    if split.get("on_quality_issue") is not None:
        parts.append(f"<p>Of {split['label_issues']} label issues, {split['label_only']} are on images with no other "
                     f"issue and {split['on_quality_issue']} on images with an image-quality issue.</p>")
    for sec in check_sections(hygiene):
        parts.append(f"<h3>{html.escape(sec['title'])}</h3>" + (f"<p>{html.escape(sec['text'])}</p>" if sec["text"] else "")
                     + (_table(pd.DataFrame(sec["details"])) if sec["details"] else ""))
        if sec["kind"] == "leak" and leakage is not None and len(leakage):
            pairs = leakage.sort_values("similarity", ascending=False).head(max_pairs)
            parts.append(_table(pairs, {"training image": ("sample_id", thumbs), "copy": ("other_id", thumbs)}
                                if thumbs else None)
                         + (f"<p>First {max_pairs} of {len(leakage)} pairs; all in leakage.parquet.</p>"
                            if len(leakage) > max_pairs else ""))
    return parts


def spot_check_section(spot: dict | None) -> list[str]:
    """The measured precision of the flags from a person's spot check (curator.audit.spot_check.summarise)."""
    if not spot or not spot.get("overall"):
        return []
    o = spot["overall"]
    rows = pd.DataFrame([{"score band": f"{b['score_from']:.3f} – {min(b['score_to'], 1.0):.3f}",
                          "flagged in band": b["n_flagged"], "answered": b["n_answered"], "label wrong": b["n_wrong"],
                          "precision": b["precision"], "95% low": b["low"], "95% high": b["high"]}
                         for b in spot["bands"]])
    covers = f" The estimate covers the {100 * o['covers']:.0f}% of flags in bands with answers." if o["covers"] < 1 else ""
    return [f"<h2>Measured precision of the flags (spot check)</h2><p>A person answered {o['n_answered']} of "
            f"{spot['n_drawn']} randomly drawn flagged samples ({html.escape(str(spot.get('mode', 'full')))} spot check, "
            f"stratified by score band): <strong>{100 * o['precision']:.1f}%</strong> of the flags are real label errors "
            f"(95% interval {100 * o['low']:.1f}–{100 * o['high']:.1f}%; Wilson per band, stratified Wilson overall, "
            f"docs/spot_check.md).{covers}</p>", _table(rows)]


def render_report(audit: pd.DataFrame, classes: pd.DataFrame, *, class_names: list[str], metrics: dict | None = None,
                  true_label: np.ndarray | None = None, title: str = "curator audit", top: int = 30,
                  warnings: list[str] | None = None, hygiene: dict | None = None, leakage: pd.DataFrame | None = None,
                  max_pairs: int = 50, evidence: dict | None = None, spot_check: dict | None = None,
                  thumbnails: dict[str, str] | None = None) -> str:
    """The HTML text (see module docstring). `thumbnails` maps sample ids (training and test / val) to small
    data-URI images (`thumbnail_uris`) shown beside the top issues and the leaked pairs."""
    names = np.asarray(class_names)
    thumbnails = thumbnails or {}
    shown = [c for c in ("sample_id", "label", "suggested_label", "label_issue_score", "suggested_label_confidence",
                         "rank", "shot_group", "issue_kinds", "quality_issues", "duplicate_of") if c in audit.columns]
    top_df = audit.sort_values("rank").head(top)[shown].copy()
    top_df["label"] = names[top_df["label"].to_numpy()]
    top_df["suggested_label"] = names[top_df["suggested_label"].to_numpy()]
    risk = classes[classes["at_risk"] | (classes["estimated_noise_rate"] > 0.3)]
    parts = [f"<h1>{html.escape(title)}</h1>",
             f"<p>{len(audit)} training samples, {int(audit['is_label_issue'].sum())} flagged as likely label issues "
             f"({100 * audit['is_label_issue'].mean():.1f}%).</p>"]
    if evidence and evidence.get("summary") and evidence.get("grade") != "weak":  # a weak grade is a warning below
        parts.append(f'<p class="evidence"><strong>{html.escape(evidence["summary"])}</strong></p>')
    parts += [f'<p class="warning"><strong>Warning:</strong> {html.escape(w)}</p>' for w in warnings or []]
    parts += spot_check_section(spot_check)
    if metrics:
        keys = ["auroc", "precision", "recall", "f1", "suggested_label_accuracy", "suggested_label_balanced_accuracy",
                "tail_rescue", "class_size_error"]
        parts.append("<h2>Evaluation against known truth</h2>" + _table(pd.DataFrame([{k: metrics.get(k) for k in keys}]))
                     + glossary(keys))
        if metrics.get("per_shot"):
            parts.append(_table(pd.DataFrame([{"shot_group": g, **{k: v.get(k) for k in ("n", "n_mislabeled", "auroc", "precision", "recall", "f1")}}
                                              for g, v in metrics["per_shot"].items()])))
    grade = (evidence or {}).get("grade")
    for name, img in _figures(audit, classes, true_label, grade=grade):
        parts.append(f"<h2>{html.escape(name)}</h2>{img}")
    parts += _hygiene_section(audit, hygiene, leakage, max_pairs, thumbnails)
    sentences = tail_sentences(classes, metrics)
    caveat = f"<p class='caveat'>{html.escape(NOISE_CAVEAT[grade])}</p>" if grade in NOISE_CAVEAT else ""
    parts.append("<h2>Classes at risk or noisy</h2>" + caveat + "".join(f"<p class='tail'>{t}</p>" for t in sentences)
                 + (_table(risk) if len(risk) else "<p>none</p>"))
    parts.append("<h2>Per-class findings</h2>" + _table(classes) + glossary(list(classes.columns)))
    parts.append(f"<h2>Top {top} issues</h2>" + _table(top_df, {"image": ("sample_id", thumbnails)} if thumbnails else None)
                 + glossary(list(top_df.columns)))
    if metrics and metrics.get("per_signal"):
        parts.append("<h2>Individual signals (AUROC vs truth)</h2>" + _table(pd.DataFrame(
            [{"signal": k, "auroc": v.get("auroc")} for k, v in metrics["per_signal"].items()])))
    style = ("<style>body{font-family:sans-serif;max-width:1200px;margin:auto;padding:0 12px} img{max-width:100%}"
             " div.scroll{overflow-x:auto;max-width:100%} table.t{border-collapse:collapse;font-size:12px}"
             " table.t td,table.t th{padding:2px 6px;border-bottom:1px solid #ddd} table.t td{max-width:260px;overflow-wrap:anywhere}"
             " img.thumb{width:48px;height:48px;image-rendering:pixelated} details.glossary{font-size:12px;margin:6px 0}"
             " details.glossary dd{margin:0 0 4px 16px} span.dir{color:#666} p.tail{border-left:4px solid #c0392b;padding-left:8px}"
             " p.warning{background:#fff4e5;border-left:4px solid #e8a33d;padding:8px 12px}</style>")
    return f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>{style}</head><body>" \
           + "\n".join(parts) + "</body></html>"


def thumbnail_uris(images: dict[str, np.ndarray]) -> dict[str, str]:
    """{sample id: (H, W, 3) uint8 image} -> {sample id: PNG data URI} for `render_report(thumbnails=...)`."""
    from PIL import Image

    out = {}
    for sid, img in images.items():
        buf = io.BytesIO()
        Image.fromarray(np.asarray(img, np.uint8)).save(buf, format="PNG", optimize=True)
        out[str(sid)] = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    return out
