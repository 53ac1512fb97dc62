"""`curator bench NAME`: the benchmark suite (SPEC §7). Each benchmark is a module in
`curator.bench` exposing ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> dict``.
The result is printed as a table (or one JSON object with ``--json``) and written to
``--out`` (default ``bench-results/<name>.json``).
"""
from __future__ import annotations

import argparse
import importlib
import json
import logging
import platform
import time
from pathlib import Path

from curator.log import print_json, to_jsonable
from curator.rundir import package_versions, write_json_atomic

LOG = logging.getLogger(__name__)

BENCHMARKS = ["ssl_throughput", "knn_scale", "robust_accuracy", "detect_cifar10n", "end_to_end", "explorer", "hygiene",
              "scale", "decode", "gpu", "audit_cost"]


def _modules():
    for mod in BENCHMARKS:
        try:
            yield importlib.import_module(f"curator.bench.{mod}")
        except ModuleNotFoundError as exc:
            if exc.name == f"curator.bench.{mod}":
                continue
            raise


def machine_description() -> dict:
    import os

    import torch

    info = {"platform": platform.platform(), "cpu_count": os.cpu_count(), "python": platform.python_version(),
            "torch": torch.__version__, "cuda": torch.cuda.is_available()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _print_table(result: dict) -> None:
    rows = result.get("rows")
    if not rows:
        print(json.dumps(to_jsonable(result), indent=2))
        return
    cols = list(rows[0].keys())
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)  # noqa: E731
    widths = [max(len(c), *(len(fmt(r.get(c, ""))) for r in rows)) for c in cols]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths)))
    for r in rows:
        print("  ".join(fmt(r.get(c, "")).ljust(w) for c, w in zip(cols, widths)))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="run a benchmark (see SPEC §7)")
    bsub = p.add_subparsers(dest="bench_name", metavar="BENCHMARK", required=True)
    for mod in _modules():
        bp = bsub.add_parser(mod.NAME, help=mod.HELP)
        bp.add_argument("--json", action="store_true", help="print one JSON object on stdout")
        bp.add_argument("--out", default=None, help="where to write the JSON result (default bench-results/NAME.json)")
        mod.add_arguments(bp)
        bp.set_defaults(func=lambda args, mod=mod: _run(mod, args))


def _run(mod, args) -> int:
    t0 = time.perf_counter()
    result = mod.run(args)
    result = {"benchmark": mod.NAME, "date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine_description(),
              "versions": package_versions(), "wall_s": round(time.perf_counter() - t0, 2), **result}
    out = Path(args.out or f"bench-results/{mod.NAME}.json")
    write_json_atomic(out, result)
    LOG.info("wrote %s", out)
    if args.json:
        print_json(result)
    else:
        _print_table(result)
    return 0
