"""The outlier check: training samples far from every other sample in the kNN graph (`curator.hygiene.outliers`)."""
from __future__ import annotations

from curator.columns import Column
from curator.hygiene.outliers import find_outliers
from curator.hygiene.plugin import CheckInputs, Found, HygieneCheck


class OutlierCheck(HygieneCheck):
    kind = "outlier"
    version = 1
    words = "outlier (unlike every other sample)"
    title = "Outliers"
    summary_key = "outliers"
    flag_explanation = ("The sample is far from every other sample in embedding space (outlier_distance far above "
                        "the dataset's typical value).")
    values = (Column("outlier_distance", ("hygiene", "signals"), "higher_is_worse", "[0, 2]",
                     "Mean cosine distance to the 5 nearest other samples: large = unlike anything else in the "
                     "dataset.", "outlier check (curator.hygiene.outliers)"),)

    def run(self, inputs: CheckInputs) -> Found:
        if inputs.graph is None:
            return Found(self.empty(inputs.n), {"skipped": "no kNN graph"})
        cols, summary = find_outliers(inputs.graph, neighbours=inputs.cfg.outlier_neighbours, z=inputs.cfg.outlier_z)
        return Found(cols, summary)

    def describe(self, summary: dict) -> str:
        if summary.get("distance_threshold") is None:
            return super().describe(summary)
        return (f"{summary.get('n_flagged', 0)} samples whose mean cosine distance to their {summary.get('neighbours')} "
                f"nearest neighbours exceeds {summary['distance_threshold']:.4f} "
                f"(median {summary.get('median_distance', 0):.4f}).")
