import multiprocessing as mp

import pytest

from curator.review import load_decisions, record_decisions


def test_decisions_merge_latest_wins_and_clear(tmp_path):
    record_decisions(tmp_path, ["a", "b"], "drop")
    record_decisions(tmp_path, ["b"], "relabel", 3, n_classes=5)
    d = load_decisions(tmp_path).set_index("sample_id")
    assert d.loc["a", "action"] == "drop" and d.loc["a", "new_label"] == -1
    assert d.loc["b", "action"] == "relabel" and d.loc["b", "new_label"] == 3
    record_decisions(tmp_path, ["a"], "clear")
    assert list(load_decisions(tmp_path)["sample_id"]) == ["b"]


def test_bad_decisions_rejected(tmp_path):
    with pytest.raises(ValueError, match="unknown review action"):
        record_decisions(tmp_path, ["a"], "delete")
    with pytest.raises(ValueError, match="out of range"):
        record_decisions(tmp_path, ["a"], "relabel", 9, n_classes=5)


def _writer(path, prefix):
    for i in range(15):
        record_decisions(path, [f"{prefix}{i}"], "keep")


def test_two_writers_lose_nothing(tmp_path):
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(tmp_path, p)) for p in ("x", "y")]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    ids = set(load_decisions(tmp_path)["sample_id"])
    assert ids == {f"x{i}" for i in range(15)} | {f"y{i}" for i in range(15)}
