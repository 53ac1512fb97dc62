"""`curator bench end-to-end`: wall time of `curator audit` (default: the digits recipe) and its quality."""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from curator import runfiles

NAME = "end-to-end"
HELP = "wall time of the whole `curator audit` pipeline (default: digits, the embedded default)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from curator.data.options import add_dataset_args

    add_dataset_args(p)
    p.add_argument("--run-dir", default=None, help="run directory (default: a fresh temporary one, so nothing is skipped)")
    p.add_argument("--recipe", default=None)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")


def run(args) -> dict:
    from curator.data.registry import given_dataset_options
    from pipelines.audit import run_pipeline

    options = given_dataset_options(args)
    with tempfile.TemporaryDirectory(prefix="curator-e2e-") as tmp:
        out = args.run_dir or tmp
        t0 = time.perf_counter()
        s = run_pipeline(options, out, recipe=args.recipe, overrides=args.overrides)
        wall = time.perf_counter() - t0
        import json

        timings = json.loads((Path(out) / runfiles.PROVENANCE).read_text()).get("timings_s", {})
    m = s.get("metrics") or {}
    row = {"dataset": options.get("dataset", "digits"), "n_samples": s["n_samples"], "wall_s": round(wall, 1), "n_flagged": s.get("n_flagged"),
           "auroc": m.get("auroc"), "f1": m.get("f1"), "tail_rescue": m.get("tail_rescue"),
           "class_size_error": m.get("class_size_error")}
    return {"rows": [row], "stage_seconds": timings}
