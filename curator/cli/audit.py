"""`curator audit`: dataset → ranked label issues, per-class findings, evaluation, report (SPEC §1, §10)."""
from __future__ import annotations

import argparse
import time

from curator.data.options import DatasetOptions, add_dataset_args
from curator.log import print_json


def add_pipeline_args(p: argparse.ArgumentParser) -> None:
    add_dataset_args(p)
    p.add_argument("--out", default=None, help="run directory (default runs/<dataset>-<YYYYmmdd-HHMMSS>)")
    p.add_argument("--recipe", default=None, help="recipe TOML (default pipelines/recipes/<dataset>.toml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a recipe value, e.g. --set heads.epochs=5 (repeatable)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def run_until(args: argparse.Namespace, until: str) -> int:
    from curator.config import ConfigError
    from pipelines.audit import run_pipeline

    given = {k: v for k, v in vars(DatasetOptions.from_args(args)).items() if getattr(args, k, None) is not None}
    out = args.out or f"runs/{given.get('dataset', 'digits')}-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        summary = run_pipeline(given, out, recipe=args.recipe, overrides=args.overrides, until=until)
    except ConfigError as exc:
        import logging

        logging.getLogger("curator").error("%s", exc)
        return 2
    if args.json:
        print_json(summary)
    else:
        print(f"run directory: {summary['run_dir']}")
        if "n_flagged" in summary:
            print(f"{summary['n_flagged']} of {summary['n_samples']} samples flagged as likely label issues")
        m = summary.get("metrics")
        if m:
            print("vs truth: " + ", ".join(f"{k} {m[k]:.3f}" for k in ("auroc", "precision", "recall", "f1",
                                                                      "suggested_label_accuracy", "class_size_error")
                                              if isinstance(m.get(k), float)))
        if "report" in summary:
            print(f"report: {summary['report']}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("audit", help="run the whole pipeline: ranked label issues, tail report, metrics, report.html")
    add_pipeline_args(p)
    p.set_defaults(func=lambda args: run_until(args, "report"))
