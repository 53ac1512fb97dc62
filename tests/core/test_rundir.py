import json
import os

import numpy as np
import pandas as pd
import pytest

from curator.rundir import RunDir, atomic_path


def test_atomic_path_leaves_old_file_when_block_fails(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half-written")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]  # no temp file left behind


def test_io_round_trip(tmp_path):
    run = RunDir(tmp_path / "run")
    df = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    run.write_parquet("t.parquet", df)
    pd.testing.assert_frame_equal(run.read_parquet("t.parquet"), df)
    arr = np.arange(6, dtype=np.float16).reshape(2, 3)
    run.write_npy("e.npy", arr)
    np.testing.assert_array_equal(run.read_npy("e.npy"), arr)
    run.write_json("c.json", {"x": np.int64(3), "y": np.array([1.5])})
    assert run.read_json("c.json") == {"x": 3, "y": [1.5]}


def test_stage_skipped_when_inputs_unchanged_and_rerun_when_changed(tmp_path):
    run = RunDir(tmp_path)
    calls = []

    def make(value):
        def fn():
            calls.append(value)
            run.write_json("out.json", {"v": value})
        return fn

    run.write_npy("in.npy", np.zeros(3))
    assert run.run_stage("s", make(1), inputs={"k": 1}, outputs=["out.json"], input_files=["in.npy"])
    assert not run.run_stage("s", make(1), inputs={"k": 1}, outputs=["out.json"], input_files=["in.npy"])
    assert calls == [1]
    # a changed config re-runs
    assert run.run_stage("s", make(2), inputs={"k": 2}, outputs=["out.json"], input_files=["in.npy"])
    # a changed input file re-runs
    run.write_npy("in.npy", np.ones(3))
    assert run.run_stage("s", make(3), inputs={"k": 2}, outputs=["out.json"], input_files=["in.npy"])
    # a deleted output re-runs
    os.remove(run / "out.json")
    assert run.run_stage("s", make(4), inputs={"k": 2}, outputs=["out.json"], input_files=["in.npy"])
    assert calls == [1, 2, 3, 4]
    prov = json.loads((run / "provenance.json").read_text())
    assert "s" in prov["timings_s"]


def test_stage_that_forgets_its_output_fails(tmp_path):
    run = RunDir(tmp_path)
    with pytest.raises(RuntimeError, match="without writing"):
        run.run_stage("s", lambda: None, inputs={}, outputs=["missing.parquet"])


def test_forget_stage_makes_the_next_run_do_the_work(tmp_path):
    run = RunDir(tmp_path / "run")
    calls = []

    def work():
        calls.append(1)
        run.write_json("out.json", {"n": len(calls)})

    assert run.run_stage("s", work, inputs={"a": 1}, outputs=["out.json"])
    assert not run.run_stage("s", work, inputs={"a": 1}, outputs=["out.json"])
    assert run.forget_stage("s") and not run.forget_stage("s")     # True only when there was a record
    assert run.read_json("out.json") == {"n": 1}                      # the outputs stay until rewritten
    assert run.run_stage("s", work, inputs={"a": 1}, outputs=["out.json"]) and len(calls) == 2
