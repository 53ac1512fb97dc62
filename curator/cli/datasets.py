"""`curator datasets`: the adapters and what each dataset root must contain."""
from __future__ import annotations

import argparse

from curator.log import print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("datasets", help="list dataset adapters and what each root must contain")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=run)


def adapter_table() -> list[dict]:
    from curator.data.registry import ADAPTERS

    return [{"name": s.name, "summary": s.summary, "root_layout": s.root_layout, "needs_root": s.needs_root}
            for s in ADAPTERS.values()]


def run(args: argparse.Namespace) -> int:
    rows = adapter_table()
    if args.json:
        print_json({"adapters": rows})
        return 0
    for r in rows:
        print(f"{r['name']}\n  {r['summary']}\n  root: {r['root_layout']}")
    print("\nUse: curator inspect --dataset NAME --root DIR [--label-set ...] [--imbalance exp --gamma 100] "
          "[--noise uniform --noise-rate 0.4] [--seed 0]")
    return 0
