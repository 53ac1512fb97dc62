"""`curator signals`: the pipeline up to the per-sample signals (resumable; same options as `audit`)."""
from __future__ import annotations

import argparse

from curator.cli.audit import add_pipeline_args, run_until
from curator.log import print_json


def _run(args: argparse.Namespace) -> int:
    summary = run_until(args, "signals")
    if summary is None:
        return 2
    print_json(summary) if args.json else print(f"signals written in {summary['run_dir']} (RUN/signals.parquet)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("signals", help="run the pipeline up to the per-sample signals (RUN/signals.parquet)")
    add_pipeline_args(p)
    p.set_defaults(func=_run)
