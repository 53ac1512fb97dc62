"""The docs' column tables are the column contract's own text (curator/columns.py), never a hand-kept copy."""
from pathlib import Path

import pytest

from curator.columns import fill_docs, markdown_table
from curator.signals import registry  # noqa: F401 - declares the heads' and the hygiene checks' columns

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("doc,table", [("docs/signals.md", "signals"), ("docs/audit.md", "audit")])
def test_docs_hold_the_generated_column_table(doc, table):
    text = (ROOT / doc).read_text(encoding="utf-8")
    assert f"<!-- columns:{table} -->" in text, f"{doc} lacks its generated column table"
    assert markdown_table(table) in text
    assert fill_docs(text) == text, f"{doc} is out of date: run `python -m curator.signals.registry {doc}`"


def test_fill_docs_replaces_only_the_marked_block():
    text = "intro\n<!-- columns:audit -->\nstale\n<!-- /columns:audit -->\nrest"
    out = fill_docs(text)
    assert out.startswith("intro\n") and out.endswith("\nrest") and "stale" not in out
    assert markdown_table("audit") in out
