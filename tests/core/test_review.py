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


def test_the_log_keeps_every_decision_with_its_reviewer(tmp_path):
    from curator.review import load_decision_log

    record_decisions(tmp_path, ["a", "b"], "drop", reviewer="ann")
    record_decisions(tmp_path, ["a"], "relabel", 2, n_classes=5, reviewer="bob")
    log = load_decision_log(tmp_path)
    assert log["seq"].tolist() == [0, 1, 2] and log["batch"].tolist() == [0, 0, 2]   # the bulk drop is one batch
    assert log["reviewer"].tolist() == ["ann", "ann", "bob"]
    assert log["action"].tolist() == ["drop", "drop", "relabel"]
    d = load_decisions(tmp_path).set_index("sample_id")                    # export reads the newest per sample
    assert d.loc["a", "action"] == "relabel" and d.loc["a", "reviewer"] == "bob" and d.loc["b", "action"] == "drop"


def test_undo_restores_the_state_before_the_batch(tmp_path):
    from curator.review import load_decision_log, undo_last

    record_decisions(tmp_path, ["a"], "keep", reviewer="ann")
    record_decisions(tmp_path, ["a", "b", "c"], "drop", reviewer="ann")      # a bulk decision
    record_decisions(tmp_path, ["c"], "relabel", 1, reviewer="bob")          # bob decides c again afterwards
    undone = undo_last(tmp_path, reviewer="ann")
    assert sorted(undone["sample_id"]) == ["a", "b"]                           # c keeps bob's newer decision
    d = load_decisions(tmp_path).set_index("sample_id")
    assert d.loc["a", "action"] == "keep" and "b" not in d.index and d.loc["c", "action"] == "relabel"
    undo_last(tmp_path, reviewer="ann")                                         # the next undo: ann's first keep
    assert "a" not in set(load_decisions(tmp_path)["sample_id"])
    assert len(undo_last(tmp_path, reviewer="ann")) == 0                      # nothing left to undo
    log = load_decision_log(tmp_path)
    assert len(log) == 8 and (log["undoes"] >= 0).sum() == 3                   # nothing was erased from the log


def test_a_file_from_before_the_log_is_read(tmp_path):
    import pandas as pd

    pd.DataFrame({"sample_id": ["a", "b"], "action": ["drop", "relabel"], "new_label": [-1, 3],
                  "updated": ["2026-01-01T00:00:00Z"] * 2}).to_parquet(tmp_path / "decisions.parquet")
    d = load_decisions(tmp_path).set_index("sample_id")
    assert d.loc["b", "new_label"] == 3 and d.loc["a", "action"] == "drop"
    record_decisions(tmp_path, ["a"], "keep", reviewer="ann")
    assert load_decisions(tmp_path).set_index("sample_id").loc["a", "action"] == "keep"


def test_a_damaged_log_is_one_line_naming_the_file(tmp_path):
    import pandas as pd

    from curator.data.problems import DataError

    pd.DataFrame({"seq": [0], "sample_id": ["a"], "action": ["keep"], "new_label": [-1]}).to_parquet(
        tmp_path / "decisions.parquet")
    with pytest.raises(DataError, match="lacks column"):
        load_decisions(tmp_path)
    pd.DataFrame({"seq": [0], "batch": [0], "sample_id": ["a"], "action": ["erase"], "new_label": [-1],
                  "reviewer": ["x"], "updated": [""], "undoes": [-1]}).to_parquet(tmp_path / "decisions.parquet")
    with pytest.raises(DataError, match="action"):
        load_decisions(tmp_path)


def test_a_batch_of_mixed_decisions_is_one_batch_and_one_undo(tmp_path):
    from curator.review import load_decision_log, record_batch, undo_last

    record_decisions(tmp_path, ["c"], "keep", reviewer="ann")
    record_batch(tmp_path, ["a", "b", "c"], ["keep", "drop", "relabel"], [None, None, 2], n_classes=5, reviewer="ann")
    d = load_decisions(tmp_path).set_index("sample_id")
    assert d["action"].to_dict() == {"a": "keep", "b": "drop", "c": "relabel"}
    assert d["new_label"].to_dict() == {"a": -1, "b": -1, "c": 2}
    assert load_decision_log(tmp_path)["batch"].tolist() == [0, 1, 1, 1]
    undo_last(tmp_path, "ann")
    assert load_decisions(tmp_path).set_index("sample_id")["action"].to_dict() == {"c": "keep"}
    with pytest.raises(ValueError, match="one of each per sample"):
        record_batch(tmp_path, ["a", "b"], ["keep"], [None])
    with pytest.raises(ValueError, match="relabel needs new_label"):
        record_batch(tmp_path, ["a", "b"], ["keep", "relabel"], [None, None])
    with pytest.raises(ValueError, match="out of range"):
        record_batch(tmp_path, ["a"], ["relabel"], [7], n_classes=5)
