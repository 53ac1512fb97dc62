"""Faults (issue 11): a run killed with SIGKILL in any stage resumes to identical results; a truncated
artefact is recomputed; two audits on one --out: the second refuses, naming the first.

Each run is a real `curator audit` subprocess on the embedded digits (300 samples, fixed epochs, small
heads) so the kill is a real ``kill -9`` at an unknown point of the stage. The tests key on stage
records appearing under RUN/stages/*.json (in the order an uninterrupted run wrote them), not on
fixed stage names, except ``audit`` and the SSL checkpoint ``checkpoints/last.pt``.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

# fixed epochs (no time cap) so that a resumed run must reproduce the uninterrupted one exactly
SETTINGS = ["--limit", "300", "--set", "ssl.epochs=10", "--set", "ssl.max_minutes=100000", "--set", "heads.epochs=3",
            "--set", 'heads.heads=["ce","lasl","gdw"]', "--set", "evidence.folds=2", "--set", "audit.rounds=1"]
RESULT_FILES = ["embeddings.npy", "signals.parquet", "audit.parquet", "classes.parquet"]


def _env() -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.pop("RANK", None)
    return env


def _command(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "curator", "audit", "--out", str(out), *SETTINGS, *extra]


def run_audit(out: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(_command(out), env=_env(), capture_output=True, text=True, timeout=timeout)


def stage_order(run: Path) -> list[str]:
    """Stage names in the order their records were written."""
    recs = sorted((run / "stages").glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
    return [p.stem for p in recs]


def kill_when(out: Path, ready, timeout: float = 300) -> tuple[set[str], str]:
    """Start an audit into `out`, SIGKILL it as soon as `ready(out)` holds; return (stage records then, stderr)."""
    log = out.parent / f"killed-{time.monotonic_ns()}.log"
    with open(log, "w") as err:  # a file, not a pipe: a full pipe would stall the run before the kill point
        proc = subprocess.Popen(_command(out), env=_env(), stdout=subprocess.DEVNULL, stderr=err, text=True)
        t0 = time.monotonic()
        try:
            while not ready(out):
                if proc.poll() is not None:
                    pytest.fail(f"the run ended (rc {proc.returncode}) before the kill point:\n{log.read_text()[-2000:]}")
                if time.monotonic() - t0 > timeout:
                    pytest.fail("kill point not reached in time")
                time.sleep(0.01)
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    stages = {p.stem for p in (out / "stages").glob("*.json")}
    return stages, log.read_text()


def assert_same_results(a: Path, b: Path) -> None:
    for name in RESULT_FILES:
        if name.endswith(".npy"):
            np.testing.assert_array_equal(np.load(a / name), np.load(b / name), err_msg=name)
        else:
            # check_like: a head reloaded from disk lists its signal columns sorted, one kept in memory in the
            # order it made them, so a resumed signals table may order its columns differently (same values)
            pd.testing.assert_frame_equal(pd.read_parquet(a / name), pd.read_parquet(b / name), obj=name,
                                          check_like=True)
    for head in sorted((a / "heads").glob("*.npz")):
        with np.load(head) as x, np.load(b / "heads" / head.name) as y:
            assert set(x.files) == set(y.files)
            for k in set(x.files) - {"seconds"}:  # wall time, not a result
                np.testing.assert_array_equal(x[k], y[k], err_msg=f"{head.name}:{k}")
    assert json.loads((a / "metrics.json").read_text()) == json.loads((b / "metrics.json").read_text())


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, list[str]]:
    out = tmp_path_factory.mktemp("faults") / "reference"
    done = run_audit(out)
    assert done.returncode == 0, done.stderr[-3000:]
    order = stage_order(out)
    assert order[-1] == "report" and "audit" in order and any(s.startswith("heads_") for s in order), order
    return out, order


def _record(name: str):
    return lambda out: (out / "stages" / f"{name}.json").exists()


def _kill_points(order: list[str]) -> dict[str, tuple[str, object]]:
    """target stage -> (what it is, the condition to kill at): right after the record of the stage before it."""
    heads = [i for i, s in enumerate(order) if s.startswith("heads_")]
    points = {"pretrain": ("pre-training", lambda out: (out / "checkpoints" / "last.pt").exists()
                           and not (out / "stages" / "pretrain.json").exists())}
    points[order[heads[0]]] = ("heads", _record(order[heads[0] - 1]))
    after_heads = order[heads[-1] + 1]  # signals (or the evidence stage that follows the heads)
    points[after_heads] = ("signals", _record(order[heads[-1]]))
    i = order.index("audit")
    points["audit"] = ("audit", _record(order[i - 1]))
    return points


def test_kill_9_in_every_stage_then_resume_gives_identical_results(reference, tmp_path):
    """One run directory, killed in turn during pre-training, the heads, the signals and the audit (each
    time by restarting the same command and killing it again), then finished: same results as the
    uninterrupted reference run."""
    ref, order = reference
    out = tmp_path / "run"
    for target, (phase, ready) in _kill_points(order).items():
        stages_at_kill, err = kill_when(out, ready)
        assert target not in stages_at_kill and "report" not in stages_at_kill, (phase, stages_at_kill)
        assert "Traceback" not in err, err[-3000:]
        if phase == "pre-training":
            assert (out / "checkpoints" / "last.pt").exists()
        elif phase == "heads":
            assert "resuming" in err, "pre-training resumed from its checkpoint, not from scratch"
        else:
            assert "stage pretrain: up to date, skipped" in err, phase
    done = run_audit(out)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert "stage pretrain: up to date, skipped" in done.stderr
    assert_same_results(ref, out)


def test_truncated_and_altered_artefacts_are_recomputed(reference, tmp_path):
    ref, _ = reference
    out = tmp_path / "run"
    shutil.copytree(ref, out)
    (out / "run.lock").unlink(missing_ok=True)
    for name in ("embeddings.npy", "heads/lasl.npz", "signals.parquet"):
        raw = (out / name).read_bytes()
        (out / name).write_bytes(raw[: len(raw) // 2])
    done = run_audit(out)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    for name in ("embeddings.npy", "heads/lasl.npz", "signals.parquet"):  # (the audit re-runs anyway: new inputs)
        assert f"output {name} " in done.stderr and "running the stage again" in done.stderr, name
    assert "stage pretrain: up to date, skipped" in done.stderr, "only the damaged stages ran"
    assert_same_results(ref, out)
    # an altered output alone: only its stage (and what reads it) runs again
    raw = (out / "audit.parquet").read_bytes()
    mid = len(raw) // 2
    (out / "audit.parquet").write_bytes(raw[:mid] + bytes([raw[mid] ^ 0xFF]) + raw[mid + 1:])
    done = run_audit(out)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "output audit.parquet content differs from the recorded checksum" in done.stderr
    assert "stage signals: up to date, skipped" in done.stderr or "stage signals: running" not in done.stderr
    assert_same_results(ref, out)


def test_two_audits_on_one_out_the_second_refuses(tmp_path, capsys):
    out = tmp_path / "run"
    first = subprocess.Popen([sys.executable, "-m", "curator", "audit", "--out", str(out), *SETTINGS,
                              "--set", "ssl.epochs=100000"], env=_env(), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        t0 = time.monotonic()
        while not ((out / "run.lock").exists() and (out / "run.lock").stat().st_size > 0):
            assert first.poll() is None, "the first audit ended early"
            assert time.monotonic() - t0 < 120
            time.sleep(0.05)
        from curator.cli import main

        assert main(["audit", "--out", str(out), *SETTINGS]) == 2
        err = capsys.readouterr().err
        assert f"pid {first.pid}" in err and "being written by" in err and "Traceback" not in err
        assert not (out / "stages" / "report.json").exists() and first.poll() is None, "the first is undisturbed"
    finally:
        first.kill()
        first.wait(30)
    # once the first is gone (even killed), the lock is free again
    from curator.rundir import RunDir

    assert RunDir(out, create=False).writer() is None
