"""`curator audit`: dataset → ranked label issues, per-class findings, evaluation, report (README.md, ARCHITECTURE.md).

`add_pipeline_args` and `run_until` are shared by every command that runs the pipeline (`audit`,
`pretrain`, `embed`, `train`, `signals`): the same dataset options, `--out`, `--recipe`, `--set` and the
same SSL shortcuts, resolved through the same recipe (`pipelines.recipes.resolve_recipe`).
"""
from __future__ import annotations

import argparse
import logging
import time

from curator.data.options import add_dataset_args
from curator.log import print_json

LOG = logging.getLogger("curator")

#: command-line option -> the SSLConfig field it sets, as a typed value (`--epochs 50` = `--set ssl.epochs=50`)
SSL_OPTIONS = {"method": "method", "epochs": "epochs", "budget": "budget_minutes", "batch_size": "batch_size",
               "base_lr": "base_lr", "backbone": "backbone", "weights": "weights", "device": "device",
               "compile": "compile"}


def add_pipeline_args(p: argparse.ArgumentParser) -> None:
    from curator.ssl.methods import METHODS

    add_dataset_args(p)
    p.add_argument("--out", default=None, help="run directory (default runs/<dataset>-<YYYYmmdd-HHMMSS>)")
    p.add_argument("--recipe", default=None, help="recipe TOML (default pipelines/recipes/<dataset>.toml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a recipe value, e.g. --set heads.epochs=5 (repeatable)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    g = p.add_argument_group("representation and self-supervised pre-training (typed shortcuts for --set ssl.KEY=VALUE)")
    g.add_argument("--method", choices=sorted(METHODS), default=None, help="SSL method (default simsiam)")
    g.add_argument("--epochs", type=int, default=None,
                   help="pre-training epochs, fixed outright (0 with --weights: embed with them as they are)")
    g.add_argument("--budget", type=float, default=None, metavar="MINUTES",
                   help="pre-training time budget: curator measures its speed and chooses the epochs (on a CPU also "
                        "the backbone and resolution) once per run (CPU default 5)")
    g.add_argument("--batch-size", dest="batch_size", type=int, default=None, help="global batch size")
    g.add_argument("--lr", dest="base_lr", type=float, default=None, help="base lr per 256 images (default: the method's)")
    g.add_argument("--backbone", default=None,
                   help="auto|resnet18_cifar|resnet18|resnet50|tiny_cnn|small_cnn|torchvision:NAME|timm:NAME|openclip:ARCH")
    g.add_argument("--weights", default=None, metavar="FILE|NAME",
                   help="start from these weights: a file (a torchvision/timm state dict, an earlier run's "
                        "checkpoints/backbone.pt), or the library's pretrained weights by name from its cache — "
                        "torchvision: imagenet (the DEFAULT) or a member such as IMAGENET1K_V2; timm: pretrained; "
                        "openclip: a tag such as laion2b_s34b_b79k — downloaded once into that cache when absent. "
                        "An existing file of that name wins")
    g.add_argument("--device", default=None,
                   help="cpu, cuda or cuda:i for every stage that computes (pre-training, embedding, heads, evidence, "
                        "hygiene; default: CUDA when present)")
    g.add_argument("--compile", choices=["auto", "on", "off"], default=None)


def ssl_options(args: argparse.Namespace) -> dict:
    """The SSL options given on the command line, as typed SSLConfig values (they win over --set for the same key)."""
    return {key: getattr(args, attr) for attr, key in SSL_OPTIONS.items() if getattr(args, attr, None) is not None}


def run_until(args: argparse.Namespace, until: str) -> dict | None:
    """Run the pipeline up to stage `until`; the summary, or None after a configuration error (logged)."""
    from curator.config import ConfigError
    from pipelines.audit import run_pipeline

    from curator.data.registry import given_dataset_options

    given = given_dataset_options(args)
    out = args.out or f"runs/{given.get('dataset', 'digits')}-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        return run_pipeline(given, out, recipe=args.recipe, overrides=args.overrides, ssl=ssl_options(args),
                            until=until)
    except ConfigError as exc:
        LOG.error("%s", exc)
        return None


def _run(args: argparse.Namespace) -> int:
    summary = run_until(args, "report")
    if summary is None:
        return 2
    if args.json:
        print_json(summary)
        return 0
    print(f"run directory: {summary['run_dir']}")
    print(f"{summary['n_flagged']} of {summary['n_samples']} samples flagged as likely label issues")
    if (summary.get("evidence") or {}).get("summary"):
        print(summary["evidence"]["summary"])
    m = summary.get("metrics")
    if m:
        print("vs truth: " + ", ".join(f"{k} {m[k]:.3f}" for k in ("auroc", "precision", "recall", "f1",
                                                                  "suggested_label_accuracy", "class_size_error")
                                          if isinstance(m.get(k), float)))
    print(f"report: {summary['report']}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("audit", help="run the whole pipeline: ranked label issues, tail report, metrics, report.html")
    add_pipeline_args(p)
    p.set_defaults(func=_run)
