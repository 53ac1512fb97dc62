"""`curator embed`: write RUN/embeddings.npy (N_train x d float16) from the pre-trained encoder
(pre-training first if needed), or from `--embeddings FILE`."""
from __future__ import annotations

import argparse

from curator.cli.pretrain import add_ssl_args, ssl_overrides
from curator.data.options import DatasetOptions, add_dataset_args
from curator.log import print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("embed", help="extract embeddings (N x d float16) into the run directory")
    add_dataset_args(p)
    add_ssl_args(p)
    p.add_argument("--views", dest="embed_views", type=int, default=None,
                   help="also write this many augmented views per sample (embeddings_views.npy)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pipelines.prepare import prepare_run
    from pipelines.ssl import embed_stage, resolve_config

    run_dir, ds = prepare_run(args.out, DatasetOptions.from_args(args), needs_labels=False)
    cfg = None if args.embeddings else resolve_config(ds, overrides=ssl_overrides(args))
    emb = embed_stage(run_dir, ds, cfg)
    result = {"run_dir": str(run_dir.path), "n_samples": int(emb.shape[0]), "dim": int(emb.shape[1]),
              "path": str(run_dir / "embeddings.npy")}
    if args.json:
        print_json(result)
    else:
        print(f"wrote {result['path']}: {result['n_samples']} x {result['dim']} float16")
    return 0
