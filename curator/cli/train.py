"""`curator train`: the pipeline up to the robust heads (resumable; same options as `audit`)."""
from __future__ import annotations

import argparse

from curator.cli.audit import add_pipeline_args, run_until
from curator.log import print_json


def _run(args: argparse.Namespace) -> int:
    summary = run_until(args, "heads")
    if summary is None:
        return 2
    print_json(summary) if args.json else print(f"heads trained in {summary['run_dir']} (RUN/heads/*.npz)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="run the pipeline up to the robust heads (RUN/heads/*.npz)")
    add_pipeline_args(p)
    p.set_defaults(func=_run)
