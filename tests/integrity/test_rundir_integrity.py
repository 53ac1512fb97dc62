"""The run directory's guarantees: stage outputs verified by size + checksum, one writer at a time
(fcntl lock naming the holder), files that honour the umask."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from curator.data.problems import DataError
from curator import runfiles
from curator.rundir import (RunDir, RunLockedError, acquire_writer_lock, current_umask,
                            release_writer_lock, write_json_atomic)

ROOT = Path(__file__).resolve().parents[2]


def _stage(run: RunDir, calls: list, value: int = 1) -> bool:
    def fn():
        calls.append(value)
        run.write_npy("out.npy", np.arange(100) * value)
    return run.run_stage("s", fn, inputs={"v": value}, outputs=["out.npy"])


@pytest.mark.parametrize("damage", ["truncate", "flip_byte", "delete", "replace_same_size"])
def test_a_damaged_output_makes_the_stage_run_again(tmp_path, damage):
    run, calls = RunDir(tmp_path), []
    assert _stage(run, calls) and not _stage(run, calls)
    p = run / "out.npy"
    raw = p.read_bytes()
    if damage == "truncate":
        p.write_bytes(raw[:50])
    elif damage == "flip_byte":
        p.write_bytes(raw[:-1] + bytes([raw[-1] ^ 1]))
    elif damage == "delete":
        p.unlink()
    else:
        p.write_bytes(b"\0" * len(raw))
    assert _stage(run, calls), "the stage ran again"
    assert calls == [1, 1]
    np.testing.assert_array_equal(np.load(p), np.arange(100))
    rec = run.stage_record("s")
    assert rec["files"]["out.npy"]["size"] == p.stat().st_size


def test_a_record_without_checksums_is_trusted_once_and_then_checked(tmp_path):
    run, calls = RunDir(tmp_path), []
    _stage(run, calls)
    rec = run.stage_record("s")
    del rec["files"]
    run.write_json("stages/s.json", rec)  # as written before checksums were recorded
    assert not _stage(run, calls)
    assert "files" in run.stage_record("s")
    (run / "out.npy").write_bytes((run / "out.npy").read_bytes()[:10])
    assert _stage(run, calls)


def test_verify_output_names_the_file_and_the_fix(tmp_path):
    run, calls = RunDir(tmp_path), []
    _stage(run, calls)
    run.verify_output("out.npy")
    (run / "out.npy").write_bytes(b"x")
    with pytest.raises(DataError, match=r"out\.npy.*stage 's'.*truncated.*re-run"):
        run.verify_output("out.npy")
    with pytest.raises(DataError, match="not found"):
        run.verify_output("nothing.parquet")


def test_files_honour_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        assert current_umask() == 0o027
        run = RunDir(tmp_path / "r")
        run.write_json("a.json", {"x": 1})
        run.write_npy("b.npy", np.zeros(3))
        for name in ("a.json", "b.npy"):
            assert stat.S_IMODE((run / name).stat().st_mode) == 0o640, name
        os.umask(0o002)
        write_json_atomic(run / "c.json", {})
        assert stat.S_IMODE((run / "c.json").stat().st_mode) == 0o664
    finally:
        os.umask(old)


def _hold_lock_in_subprocess(path: Path) -> subprocess.Popen:
    code = ("import sys, time; from curator.rundir import acquire_writer_lock; "
            "acquire_writer_lock(sys.argv[1]); print('locked', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_writer_is_refused_with_the_holders_pid_and_host(tmp_path):
    proc = _hold_lock_in_subprocess(tmp_path)
    try:
        with pytest.raises(RunLockedError) as err:
            acquire_writer_lock(tmp_path)
        msg = str(err.value)
        assert f"pid {proc.pid}" in msg and "host" in msg and "started" in msg and str(tmp_path) in msg
        assert isinstance(err.value, DataError)
        assert RunDir(tmp_path, create=False).writer()["pid"] == proc.pid
    finally:
        proc.kill()
        proc.wait()
    t0 = time.monotonic()
    while RunDir(tmp_path, create=False).writer() is not None and time.monotonic() - t0 < 10:
        time.sleep(0.05)
    acquire_writer_lock(tmp_path)  # released by the kernel when the holder died
    try:
        info = json.loads((tmp_path / runfiles.LOCK).read_text())
        assert info["pid"] == os.getpid()
        acquire_writer_lock(tmp_path)  # the holder may ask again
        assert RunDir(tmp_path, create=False).writer() is None  # not "another" process
    finally:
        release_writer_lock(tmp_path)


def test_prepare_run_takes_the_lock(tmp_path):
    from curator.data.options import DatasetOptions
    from pipelines.prepare import prepare_run

    proc = _hold_lock_in_subprocess(tmp_path / "run")
    try:
        with pytest.raises(RunLockedError, match=f"pid {proc.pid}"):
            prepare_run(tmp_path / "run", DatasetOptions(limit=20, imbalance="none", noise="none"))
        assert not (tmp_path / "run" / "manifest.parquet").exists()
    finally:
        proc.kill()
        proc.wait()
