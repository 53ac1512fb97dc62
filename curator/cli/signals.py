"""`curator signals`: run the pipeline up to the per-sample signals (resumable; same options as `audit`)."""
from __future__ import annotations

import argparse

from curator.cli.audit import add_pipeline_args, run_until


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("signals", help="run the pipeline up to the per-sample signals (RUN/signals.parquet)")
    add_pipeline_args(p)
    p.set_defaults(func=lambda args: run_until(args, "signals"))
