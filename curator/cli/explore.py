"""`curator explore RUN [--port P]`: open the Streamlit explorer on a run directory.

Starts ``streamlit run ui/app.py -- --run RUN`` bound to 127.0.0.1 (headless: it prints the URL
instead of opening a browser). The app reads only that run directory and the dataset's images
through the dataset's image accessor.
"""
from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
from pathlib import Path

from curator import runfiles
from curator.data.problems import DataError

LOG = logging.getLogger(__name__)


def app_path() -> Path:
    from ui import APP

    return APP


def streamlit_command(run_dir: str | Path, *, port: int = 8501, map_method: str = "umap",
                      address: str = "127.0.0.1") -> list[str]:
    """The command line that serves the explorer for `run_dir`."""
    run_dir = Path(run_dir)
    if not (run_dir / runfiles.MANIFEST).exists():
        raise DataError(f"{str(run_dir)!r} is not a curator run directory (no manifest.parquet); "
                        "create one with `curator audit --out DIR`")
    return [sys.executable, "-m", "streamlit", "run", str(app_path()),
            "--server.address", address, "--server.port", str(port), "--server.headless", "true",
            "--browser.gatherUsageStats", "false", "--client.toolbarMode", "viewer",
            "--", "--run", str(run_dir.resolve()), "--map-method", map_method]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explore", help="open the Streamlit explorer on a run directory")
    p.add_argument("run", help="run directory written by `curator audit --out`")
    p.add_argument("--port", type=int, default=8501, help="port on 127.0.0.1 (default %(default)s)")
    p.add_argument("--map-method", dest="map_method", choices=["umap", "pca"], default="umap",
                   help="2-D map of the embeddings: umap (default) or pca (fast)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    cmd = streamlit_command(args.run, port=args.port, map_method=args.map_method)
    LOG.info("explorer for %s on http://127.0.0.1:%d (Ctrl-C to stop)", args.run, args.port)
    if os.name == "posix":  # become the server, so that stopping this process stops the app
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(cmd[0], cmd)
    return subprocess.call(cmd)
