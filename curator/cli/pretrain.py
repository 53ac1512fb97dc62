"""`curator pretrain`: self-supervised pre-training of the encoder (resumable, skipped when up to date)."""
from __future__ import annotations

import argparse

from curator.data.options import DatasetOptions, add_dataset_args
from curator.log import print_json


def add_ssl_args(p: argparse.ArgumentParser) -> None:
    from curator.ssl.methods import METHODS

    g = p.add_argument_group("self-supervised training")
    g.add_argument("--out", required=True, help="run directory")
    g.add_argument("--method", choices=sorted(METHODS), default=None, help="SSL method (default simsiam)")
    g.add_argument("--epochs", type=int, default=None, help="epochs (default: the dataset's recipe)")
    g.add_argument("--batch-size", dest="batch_size", type=int, default=None, help="global batch size")
    g.add_argument("--lr", dest="base_lr", type=float, default=None, help="base lr per 256 images (default: the method's)")
    g.add_argument("--backbone", default=None, help="auto|resnet18_cifar|resnet18|resnet50|tiny_cnn")
    g.add_argument("--device", default=None, help="cpu, cuda or cuda:i (default: CUDA when present)")
    g.add_argument("--compile", choices=["auto", "on", "off"], default=None)
    g.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def ssl_overrides(args: argparse.Namespace) -> dict:
    names = ("method", "epochs", "batch_size", "base_lr", "backbone", "device", "compile", "embed_views")
    return {k: getattr(args, k) for k in names if getattr(args, k, None) is not None}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pretrain", help="self-supervised pre-training (SimSiam, BYOL, SimCLR, Barlow Twins, Rotation)")
    add_dataset_args(p)
    add_ssl_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pipelines.prepare import prepare_run
    from pipelines.ssl import pretrain_stage, resolve_config

    run_dir, ds = prepare_run(args.out, DatasetOptions.from_args(args), needs_labels=False)
    cfg = resolve_config(ds, overrides=ssl_overrides(args))
    pretrain_stage(run_dir, ds, cfg)
    hist = run_dir.read_json("checkpoints/history.json", {}) or {}
    result = {"run_dir": str(run_dir.path), "method": cfg.method, "epochs": len(hist.get("history", [])),
              "best_knn": hist.get("best_knn"), "final_knn": hist.get("final_knn"), "seconds": hist.get("seconds")}
    if args.json:
        print_json(result)
    else:
        print(f"pre-trained {cfg.method} in {result['run_dir']}: kNN monitor accuracy best {result['best_knn']}, "
              f"final {result['final_knn']}")
    return 0
