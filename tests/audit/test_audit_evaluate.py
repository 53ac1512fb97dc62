"""Evaluation metrics against sklearn on a hand-made case."""
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

from curator.audit.evaluate import balanced_suggestion_accuracy, class_size_error, evaluate, tail_rescue
from curator.data.stats import shot_group


def hand_case():
    label = np.array([0, 0, 0, 1, 1, 2, 2, 0, 1, 2])
    true = np.array([0, 0, 1, 1, 2, 2, 2, 0, 0, 2])
    score = np.array([.1, .2, .9, .3, .6, .1, .2, .4, .7, .5])
    flag = np.array([0, 0, 1, 0, 0, 0, 0, 1, 1, 0], bool)
    sugg = np.array([0, 0, 1, 1, 1, 2, 2, 1, 0, 2])
    audit = pd.DataFrame({"sample_id": [str(i) for i in range(10)], "label": label, "label_issue_score": score,
                          "is_label_issue": flag, "suggested_label": sugg})
    return audit, true


def test_metrics_match_sklearn():
    audit, true = hand_case()
    m = evaluate(audit, true, 3, estimated_sizes=np.array([3.0, 3.0, 4.0]))
    wrong = true != audit["label"].to_numpy()
    assert m["auroc"] == pytest.approx(roc_auc_score(wrong, audit["label_issue_score"]))
    assert m["precision"] == pytest.approx(precision_score(wrong, audit["is_label_issue"]))
    assert m["recall"] == pytest.approx(recall_score(wrong, audit["is_label_issue"]))
    assert m["f1"] == pytest.approx(f1_score(wrong, audit["is_label_issue"]))
    # mislabeled: idx 2 (true 1, sugg 1 ok), 4 (true 2, sugg 1 no), 8 (true 0, sugg 0 ok)
    assert m["suggested_label_accuracy"] == pytest.approx(2 / 3)
    assert m["suggested_label_balanced_accuracy"] == pytest.approx((1 + 0 + 1) / 3)  # one error per true class
    # true sizes 4, 2, 4 -> errors |3-4|/4, |3-2|/2, 0
    assert m["class_size_error"] == pytest.approx((0.25 + 0.5 + 0) / 3)
    assert set(m["per_shot"]) == {"few"}


def test_tail_rescue_and_shot_groups():
    true = np.array([0] * 150 + [1] * 30)
    label = true.copy()
    label[150:160] = 0                     # 10 tail samples mislabeled as the head class
    flag = np.zeros(180, bool)
    flag[150:156] = True
    sugg = label.copy()
    sugg[150:154] = 1                      # 4 of the 6 flagged get their true class
    r, n = tail_rescue(true, label, flag, sugg, np.bincount(true))
    assert n == 10 and r == pytest.approx(0.4)
    assert list(shot_group(np.array([150, 100, 99, 21, 20, 1]))) == ["many", "many", "medium", "medium", "few", "few"]
    assert class_size_error([100, 50], [100, 25]) == pytest.approx(0.5)


def test_balanced_suggestion_accuracy_weights_classes_equally():
    true = np.array([0] * 9 + [1] + [1] * 5)
    label = np.array([1] * 9 + [0] + [1] * 5)       # nine head-class errors, one tail-class error, five clean
    sugg = np.array([0] * 9 + [0] + [1] * 5)         # every head error fixed, the tail error not
    assert balanced_suggestion_accuracy(true, label, sugg) == pytest.approx(0.5)   # overall would be 0.9
    assert balanced_suggestion_accuracy(true, true, sugg) is None                  # no errors: undefined
