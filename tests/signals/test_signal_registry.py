"""Adding a signal is one module with a `Signal` and one registry line: a toy signal (its column declared in the
contract) lands in signals.parquet; a signal runs only when its inputs are there and writes what it declares."""
import numpy as np
import pandas as pd
import pytest

from curator import columns
from curator.columns import Column
from curator.evidence import KnnGraph
from curator.evidence.knn import self_knn
from curator.signals import registry
from curator.signals.plugin import Signal
from curator.signals.table import build_signals_table

TOY = Signal("toy", ("evidence",), ("toy_margin",),
             lambda i: {"toy_margin": (i.oof_probs.max(axis=1) - i.oof_probs[np.arange(len(i.labels)), i.labels])})


def _run(n=30, c=3):
    rng = np.random.default_rng(0)
    sims, idx = self_knn(rng.normal(size=(n, 6)).astype(np.float32), 4, device="cpu")
    probs = rng.dirichlet(np.ones(c), size=n)
    manifest = pd.DataFrame({"sample_id": [f"s{i}" for i in range(n)], "label": np.arange(n) % c,
                             "true_label": np.arange(n) % c})
    return manifest, KnnGraph(idx, sims), probs


@pytest.fixture()
def toy(monkeypatch):
    monkeypatch.setattr(registry, "SIGNALS", [*registry.SIGNALS, TOY])
    monkeypatch.setitem(columns.COLUMNS, "toy_margin", Column("toy_margin", ("signals",), "higher_is_issue", "[0, 1]",
                                                             "Toy: best probability minus the label's.", "test"))
    return TOY


def test_a_registered_signal_lands_in_the_table(toy):
    manifest, graph, probs = _run()
    table = build_signals_table(manifest, {}, graph, probs, 3)
    assert list(table.columns)[-1] == "toy_margin"
    assert (table["toy_margin"] >= 0).all() and "knn_agreement" in table.columns and "cl_is_issue" in table.columns
    assert not any(c.startswith("dup_") for c in table.columns)        # no hygiene input: that signal did not run


def test_a_signal_writes_exactly_what_it_declares(monkeypatch, toy):
    bad = Signal("bad", ("evidence",), ("toy_margin",), lambda i: {"something_else": np.zeros(len(i.labels))})
    monkeypatch.setattr(registry, "SIGNALS", [*registry.SIGNALS, bad])
    manifest, graph, probs = _run()
    with pytest.raises(ValueError, match="declares"):
        build_signals_table(manifest, {}, graph, probs, 3)


def test_every_declared_signal_column_is_in_the_contract():
    for s in registry.SIGNALS:
        assert not columns.undeclared(s.columns, "signals"), s.name
        assert set(s.inputs) <= {"evidence", "heads", "hygiene"}
