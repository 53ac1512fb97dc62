"""report.html as a person reads it: thumbnails inline, tables that scroll inside a 1,200 px page, a glossary
for every column shown, and a sentence for each tail class the audit gets wrong."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from curator.audit.classes import class_findings
from curator.audit.report import render_report, tail_sentences, thumbnail_uris
from curator.columns import column


def _audit(n=300, c=4, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.choice(c, n, p=[0.5, 0.3, 0.17, 0.03])
    post = np.full((n, c), 0.02)
    post[np.arange(n), y] = 0.94
    score = rng.uniform(0, 1, n)
    audit = pd.DataFrame({"sample_id": [f"s<{i}>" for i in range(n)], "label": y, "suggested_label": (y + 1) % c,
                          "label_issue_score": score, "suggested_label_confidence": 0.5, "is_label_issue": score > 0.8,
                          "rank": pd.Series(-score).rank(method="first").astype(int)})
    true = y.copy()
    true[:40] = 3                                                           # 40 samples truly of the tail class 3
    classes = class_findings(post / post.sum(1, keepdims=True), y, audit["is_label_issue"].to_numpy(),
                             ["cat", "dog", "fox", "owl"], true_label=true)
    audit["shot_group"] = classes["shot_group"].to_numpy()[y]
    return audit, classes


def test_report_glossary_thumbnails_and_layout():
    audit, classes = _audit()
    metrics = {"auroc": 0.9, "precision": 0.8, "recall": 0.7, "f1": 0.75, "tail_rescue": 0.1,
               "per_shot": {"few": {"n": 9, "n_mislabeled": 5, "auroc": 0.33, "precision": 0.13, "recall": 0.2}}}
    top_ids = audit.sort_values("rank")["sample_id"].head(30).tolist()
    uris = thumbnail_uris({s: np.full((8, 8, 3), 200, np.uint8) for s in top_ids})
    html = render_report(audit, classes, class_names=["cat", "dog", "fox", "owl"], metrics=metrics, thumbnails=uris)
    assert html.count('<img class="thumb"') == 30                          # one small image per top issue
    assert "s&lt;" in html and "<s<" not in html                            # ids are escaped, never markup
    assert "max-width:1200px" in html and html.count('<div class="scroll">') >= 4   # wide tables scroll in the page
    shown = set(classes.columns) | {"auroc", "tail_rescue", "label_issue_score", "shot_group"}
    for name in shown:
        assert column(name) is not None, f"{name} has no declaration for the glossary"
        assert f"<dt><code>{name}</code></dt>" in html, name
    sentences = re.findall(r"<p class='tail'>(.*?)</p>", html)
    assert any(s.startswith("Class owl") and "truly belong" in s for s in sentences), sentences
    assert any("few shot group detection is poor" in s and "auroc 0.33" in s for s in sentences)


def test_no_sentence_for_a_tail_the_audit_gets_right():
    classes = pd.DataFrame({"class_name": ["a", "b"], "shot_group": ["many", "few"], "shot_group_labelled": ["many", "few"],
                            "estimated_true_size": [500, 18], "true_size": [500, 19], "at_risk": [False, False],
                            "estimated_clean_count": [490.0, 18.0], "labelled_count": [500, 18]})
    assert tail_sentences(classes, {"per_shot": {"few": {"n": 18, "n_mislabeled": 2, "auroc": 0.95, "precision": 0.9}}}) == []


def test_the_per_class_noise_is_read_in_the_light_of_the_evidence_grade():
    """Under moderate evidence the per-class noise estimate also counts what the features cannot separate (a clean
    folder read 6-31 %); the report says so beside the classes it calls noisy, and says nothing for strong evidence."""
    audit, classes = _audit()

    def caveat(grade):
        html = render_report(audit, classes, class_names=["cat", "dog", "fox", "owl"],
                             evidence={"grade": grade, "summary": f"Evidence: {grade}."})
        section = html.split("<h2>Classes at risk or noisy</h2>", 1)[1].split("<h2>", 1)[0]
        return re.findall(r"<p class='caveat'>(.*?)</p>", section)

    assert caveat("strong") == []
    (moderate,) = caveat("moderate")
    assert "reads high" in moderate and "not as a measured rate" in moderate
    (weak,) = caveat("weak")
    assert "held to the noise the evidence supports" in weak
