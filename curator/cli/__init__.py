"""The `curator` command line. Each sub-command lives in its own module in this package and
only parses arguments and calls library functions; it exposes ``register(subparsers)`` which adds
its parser and sets ``func`` to a callable taking the parsed namespace and returning an exit code.

Exit codes: 0 success; 2 a user error — a bad option (argparse), unusable data or files
(`curator.data.problems.DataError`, e.g. a missing root, a crafted pickle, a run directory locked
by another process), a bad recipe or ``--set`` (`curator.config.ConfigError`), an image that cannot
be decoded where one is required (`curator.data.images.ImageError`) — printed as one line on
stderr, never a traceback — and so is a write the machine refuses (disk full, read-only:
`curator.atomic.StorageError`); 1 `curator verify` found stale or refused files; 130 interrupted; anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from curator import __version__
from curator.log import setup_logging

# Order is the order shown in `curator --help`.
COMMANDS = ["datasets", "inspect", "pretrain", "embed", "train", "signals", "audit", "export", "explore", "verify",
            "bench"]

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
    _quiet_reported_warnings()
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from curator.config import ConfigError
    from curator.data.images import ImageError
    from curator.data.problems import DataError

    try:
        return int(args.func(args) or 0)
    except (DataError, ConfigError) as exc:
        LOG.error("%s", exc)
        return 2
    except ImageError as exc:
        LOG.error("image cannot be used: %s", exc.reason)
        return 2
    except KeyboardInterrupt:
        LOG.error("interrupted")
        return 130


def _quiet_reported_warnings() -> None:
    """PIL warns (on stderr, with a source line) about images above its pixel limit; curator reports
    each such image itself, by sample id, as a ``decompression_bomb`` problem."""
    import warnings

    from PIL import Image

    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


if __name__ == "__main__":
    sys.exit(main())
