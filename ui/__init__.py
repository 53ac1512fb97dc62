"""The Streamlit explorer (`curator explore`); `APP` is the script Streamlit runs."""
from pathlib import Path

APP = Path(__file__).resolve().parent / "app.py"
