"""The `curator` command line. Each sub-command lives in its own module in this package and
only parses arguments and calls library functions; it exposes ``register(subparsers)`` which adds
its parser and sets ``func`` to a callable taking the parsed namespace and returning an exit code.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from curator import __version__
from curator.log import setup_logging

# Order is the order shown in `curator --help`.
COMMANDS = ["datasets", "inspect", "pretrain", "embed", "train", "signals", "audit", "export", "explore", "bench"]

LOG = logging.getLogger("curator")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="curator",
        description="Audit image-classification datasets with noisy labels and long-tailed classes.",
    )
    parser.add_argument("--version", action="version", version=f"curator {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging on stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"curator.cli.{name}")
        except ModuleNotFoundError as exc:  # a command whose module is not written yet
            if exc.name == f"curator.cli.{name}":
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(getattr(args, "verbose", False))
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from curator.data.problems import DataError

    try:
        return int(args.func(args) or 0)
    except DataError as exc:
        LOG.error("%s", exc)
        return 2
    except KeyboardInterrupt:
        LOG.error("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
