"""`curator embed`: the pipeline up to RUN/embeddings.npy (N_train x d float16), pre-training first if needed,
or loading `--embeddings FILE` (resumable; same options as `audit`)."""
from __future__ import annotations

import argparse

from curator.cli.audit import add_pipeline_args, run_until
from curator.log import print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("embed", help="extract embeddings (N x d float16) into the run directory")
    add_pipeline_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    summary = run_until(args, "embed")
    if summary is None:
        return 2
    if args.json:
        print_json(summary)
        return 0
    e = summary["embeddings"]
    print(f"wrote {e['path']}: {e['n']} x {e['dim']} float16")
    return 0
