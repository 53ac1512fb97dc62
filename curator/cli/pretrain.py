"""`curator pretrain`: the pipeline up to self-supervised pre-training (resumable; same options as `audit`)."""
from __future__ import annotations

import argparse

from curator.cli.audit import add_pipeline_args, run_until
from curator.log import print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pretrain", help="self-supervised pre-training (SimSiam, BYOL, SimCLR, Barlow Twins, Rotation)")
    add_pipeline_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    summary = run_until(args, "pretrain")
    if summary is None:
        return 2
    if args.json:
        print_json(summary)
        return 0
    pre = summary.get("pretrain")
    if pre is None:
        print(f"{summary['run_dir']}: embeddings were supplied (--embeddings); nothing to pre-train")
    else:
        print(f"pre-trained {pre['method']} for {pre['epochs']} epochs in {summary['run_dir']}: kNN monitor accuracy "
              f"best {pre['best_knn']}, final {pre['final_knn']}")
    return 0
