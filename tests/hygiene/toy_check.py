"""A toy hygiene check, written the way ARCHITECTURE.md says a new check is added: this one file (plus one line in
`curator.hygiene.registry.CHECKS`, which the test adds with `registered`). It flags samples whose nearest
neighbour is unusually close, with a ``toy_score``."""
from __future__ import annotations

import contextlib

import numpy as np

from curator import columns
from curator.hygiene import registry
from curator.hygiene.plugin import CheckInputs, Found, HygieneCheck


class ToyCheck(HygieneCheck):
    kind = "toy"
    version = 3
    words = "toy (a check written by a test)"
    title = "Toy check"
    flag_explanation = "The toy check fired: toy_score above 0.5."

    @property
    def values(self):
        return (self.score("higher_is_worse", "[0, 1]", "The toy check's score: similarity to the nearest neighbour."),)

    def run(self, inputs: CheckInputs) -> Found:
        score = np.asarray(inputs.graph.similarities[:, 0], np.float32)
        flag = score > 0.5
        return Found({"toy_score": score, self.flag_column: flag}, {"n_flagged": int(flag.sum())})

    def describe(self, summary: dict) -> str:
        return super().describe(summary) or f"{summary.get('n_flagged', 0)} samples with a toy score above 0.5."


@contextlib.contextmanager
def registered(check: HygieneCheck):
    """`check` appended to the registry (the "one registry line") and its columns declared, for the test's duration."""
    saved_checks, saved_columns = list(registry.CHECKS), dict(columns.COLUMNS)
    registry.CHECKS.append(check)
    registry.declare()
    try:
        yield check
    finally:
        registry.CHECKS[:] = saved_checks
        columns.COLUMNS.clear()
        columns.COLUMNS.update(saved_columns)
