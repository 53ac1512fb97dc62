"""`curator verify RUN`: check a run directory someone handed you, without running any stage (curator.verify)."""
from __future__ import annotations

import argparse

from curator.log import print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("verify", help="check every file of a run directory against its record and schema "
                                      "(intact / stale / refused); runs no stage and writes nothing")
    p.add_argument("run", help="a run directory")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=_run)


def _run(args) -> int:
    """Exit 0 when every file is intact, 1 when something is stale or refused (listed), 2 when not a run."""
    from curator.verify import summary, verify_run

    findings, pins = verify_run(args.run)
    out = summary(findings, pins)
    if args.json:
        print_json(out)
    else:
        for f in findings:
            if f.status != "intact":
                print(f"{f.status:8s} {f.file}: {f.why}")
        c = out["counts"]
        print(f"{args.run}: {c['intact']} intact, {c['stale']} stale (`curator audit --out RUN` recomputes them), "
              f"{c['refused']} refused; image pins {pins}")
    return 0 if not (out["counts"]["stale"] or out["counts"]["refused"]) else 1
