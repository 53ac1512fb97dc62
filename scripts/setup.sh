#!/usr/bin/env bash
# Create .venv (or $CURATOR_VENV) and install curator with its test extras.
# torch/torchvision are pinned to the builds that install from local disk on our machines;
# on a machine that already has a working torch >= 2.4 in the venv, they are kept.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${CURATOR_VENV:-.venv}"
PY="${PYTHON:-python3}"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
if ! "$VENV/bin/python" -c "import torch, torchvision" 2>/dev/null; then
  "$VENV/bin/python" -m pip install -q torch==2.14.1 torchvision==0.29.1
fi
"$VENV/bin/python" -m pip install -q -e ".[dev]"
echo "curator installed in $VENV — activate with: . $VENV/bin/activate"
