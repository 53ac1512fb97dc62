"""The column contract (curator/columns.py): one declaration per column, no side effects, checked on write."""
import subprocess
import sys

import pytest

from curator import columns


def test_every_head_gets_its_four_common_columns_and_its_own():
    from curator.heads.registry import HEADS      # the head table declares its columns when imported

    for head in HEADS:
        for suffix in ("prob_label", "pred", "margin", "loss"):
            assert columns.column(f"{head}_{suffix}").tables == ("signals",)
    assert columns.column("lasl_sigma").direction == "higher_is_clean"
    assert columns.column("fsr_meta_margin").source.startswith("FSR")


def test_check_columns_names_what_is_undeclared():
    columns.check_columns(["sample_id", "label", "knn_agreement"], "signals")
    with pytest.raises(ValueError, match=r"\['mystery'\]"):
        columns.check_columns(["sample_id", "mystery"], "signals")
    with pytest.raises(ValueError, match="knn_agreement"):   # declared, but for the other table
        columns.check_columns(["knn_agreement"], "audit")


def test_importing_the_contract_imports_no_curator_package():
    code = "import sys, curator.columns; print(sorted(m for m in sys.modules if m.startswith('curator.')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['curator.columns']"


def test_describe_falls_back_for_unknown_columns():
    assert columns.describe("label_issue_score").direction == "higher_is_issue"
    assert columns.describe("something_old").direction == "info"
