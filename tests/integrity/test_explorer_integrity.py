"""The explorer under hostile or broken runs (AppTest): one clear message instead of a traceback,
class names shown as plain text, and a dataset changed after the run named by sample."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from streamlit.testing.v1 import AppTest  # noqa: E402

from curator.data.options import DatasetOptions  # noqa: E402
from curator.rundir import release_writer_lock  # noqa: E402
from pipelines.prepare import prepare_run  # noqa: E402
from tests.fixtures_run import write_fixture_run  # noqa: E402
from ui.common import md  # noqa: E402

from integrity_inputs import image_bytes, image_folder  # noqa: E402

APP = str(ROOT / "ui" / "app.py")
pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def keep_main_module():
    """AppTest installs the app script as sys.modules['__main__'] and leaves it there; a later test that
    spawns processes (torch.multiprocessing) would re-run the app in each child. Put it back."""
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


def _app(run: Path, monkeypatch, page: str | None = None) -> AppTest:
    monkeypatch.setenv("CURATOR_RUN_DIR", str(run))
    monkeypatch.setenv("CURATOR_MAP_METHOD", "pca")
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    if page:
        at.switch_page(page).run()
    return at


def test_md_escapes_everything_markdown_would_interpret():
    for text in ("[x](https://evil.example)", "![img](http://t.example/p.png)", "**bold** _it_ `code`",
                 ":red[alarm] :material/warning: $x^2$", "<b>html</b>", "# heading\n- item"):
        escaped = md(text)
        assert "\n" not in escaped
        for ch in "[]()*_`:$<>#-!":
            assert ch not in escaped.replace("\\" + ch, ""), (text, escaped)


def test_a_run_without_training_samples_shows_one_message(tmp_path, monkeypatch):
    run = write_fixture_run(tmp_path / "run")
    m = pd.read_parquet(run / "manifest.parquet")
    m.iloc[:0].to_parquet(run / "manifest.parquet")
    at = _app(run, monkeypatch)
    assert not at.exception, at.exception
    assert any("no training samples" in e.value for e in at.error)


def test_a_truncated_audit_table_shows_one_message(tmp_path, monkeypatch):
    run = write_fixture_run(tmp_path / "run")
    raw = (run / "audit.parquet").read_bytes()
    (run / "audit.parquet").write_bytes(raw[:100])
    at = _app(run, monkeypatch)
    assert not at.exception, at.exception
    assert any(md("audit.parquet") in e.value and md("re-run") in e.value for e in at.error)


def test_class_names_are_plain_text(tmp_path, monkeypatch):
    run = write_fixture_run(tmp_path / "run")
    cfg = json.loads((run / "config.json").read_text())
    evil = "[x](https://evil.example)"
    cfg["class_names"][0] = evil
    (run / "config.json").write_text(json.dumps(cfg))
    audit = pd.read_parquet(run / "audit.parquet")
    audit.loc[0, "is_label_issue"] = True
    audit.loc[0, "label_issue_score"] = 1.0
    audit.to_parquet(run / "audit.parquet")
    label0 = pd.read_parquet(run / "manifest.parquet").loc[0, "label"]
    assert label0 == 0 or (audit["label"] == 0).any()
    at = _app(run, monkeypatch, "views/flagged.py")
    assert not at.exception, at.exception
    shown = [m.value for m in at.markdown if "evil" in m.value]
    assert shown, "the class name appears on the grid"
    assert all(md(evil) in v and evil not in v for v in shown), shown


def test_a_changed_dataset_is_named_in_the_explorer(tmp_path, monkeypatch):
    folder = image_folder(tmp_path / "f")
    run, _ = prepare_run(tmp_path / "run", DatasetOptions(dataset="imagefolder", root=str(folder)))
    release_writer_lock(run.path)
    (folder / "cat/new.png").write_bytes(image_bytes(seed=90))     # added after the run: not shown anywhere
    (folder / "dog/1.png").write_bytes(image_bytes(seed=91, size=9))  # replaced after the run
    at = _app(run.path, monkeypatch)
    assert not at.exception, at.exception
    warnings = [w.value for w in at.warning]
    assert any(md("dog/1.png") in w and "changed" in w for w in warnings), warnings
    assert not any(md("cat/new.png") in w for w in warnings)
    at.session_state["sample_id"] = "dog/1.png"
    at.switch_page("views/sample.py").run()
    assert not at.exception, at.exception
    assert any("it is not shown" in w.value for w in at.warning)


def test_bad_review_decisions_are_one_message_on_every_page(tmp_path, monkeypatch):
    run = write_fixture_run(tmp_path / "run")
    ids = pd.read_parquet(run / "audit.parquet", columns=["sample_id"])["sample_id"].astype(str)[:2].tolist()
    pd.DataFrame({"sample_id": ids, "action": ["keep", "relabel"], "new_label": ["-1", "two"],
                  "updated": "2026-01-01T00:00:00Z"}).to_parquet(run / "decisions.parquet")
    at = _app(run, monkeypatch)
    shown = {}
    for page in ("views/overview.py", "views/flagged.py", "views/sample.py", "views/duplicates.py", "views/review.py"):
        at.switch_page(page).run()
        assert not at.exception, (page, at.exception)
        shown[page] = any(md("decisions.parquet") in e.value and md("new_label") in e.value for e in at.error)
    assert shown["views/review.py"], shown   # the page that reads the decisions says why, in one message
