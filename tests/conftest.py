"""Suite-wide fixtures."""
from __future__ import annotations

import sys

import pytest


@pytest.fixture(autouse=True)
def _keep_main_module():
    """Streamlit's AppTest runs the explorer's script as ``__main__`` and leaves it in `sys.modules`; a later test
    that starts processes with the spawn method (DDP, the image cache's process pool) would then re-run the
    explorer's script in every child instead of importing pytest's main module. Restore it after every test."""
    main = sys.modules.get("__main__")
    yield
    if main is not None and sys.modules.get("__main__") is not main:
        sys.modules["__main__"] = main
