#!/usr/bin/env python3
"""Prepare the GPU run of `curator bench gpu` (docs/gpu.md): pack the data into REPO/.gpucarry (ignored by git), check
that the working tree plus the carried folder stay within the 64 MiB that travel, and print the device command.

    .venv/bin/python scripts/gpu_pack.py [--src ../shared/datasets/cifar10n] [--n-audit 10000]

Then, on the device tool: run(command=<the printed line>, carry=[".gpucarry"], timeout_s=600).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from curator.bench.gpu_data import build_carry  # noqa: E402
from curator.data.problems import DataError  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--src", default=str(REPO.parent / "shared" / "datasets" / "cifar10n"),
                   help="the CIFAR-10N folder (cifar10_jpeg.npz, CIFAR-10_human.pt, embeddings-simsiam-r18/)")
    p.add_argument("--repo", default=str(REPO), help="the checkout the device tool sends (default: this one)")
    p.add_argument("--n-audit", type=int, default=10_000, help="rows of the shared embeddings to ship (default %(default)s)")
    p.add_argument("--n-test", type=int, default=2_000, help="test JPEGs for the kNN monitor (default %(default)s)")
    args = p.parse_args(argv)
    src = Path(args.src)
    if not src.is_dir() and Path("/work/shared/datasets/cifar10n").is_dir():
        src = Path("/work/shared/datasets/cifar10n")
    try:
        res = build_carry(args.repo, src, n_audit=args.n_audit, n_test=args.n_test)
    except DataError as exc:
        print(f"gpu_pack: {exc}", file=sys.stderr)
        return 1
    mib = lambda b: f"{b / 2**20:.1f} MiB"  # noqa: E731
    print(f"packed {Path(args.repo) / '.gpucarry'}: tree {mib(res['tree_bytes'])} + carry {mib(res['carry_bytes'])} "
          f"= {mib(res['total_bytes'])} of {mib(res['limit_bytes'])}")
    print(json.dumps(res["pack"]["bytes"]))
    print("device tool: run(carry=[\".gpucarry\"], timeout_s=600, command=)")
    print(res["command"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
