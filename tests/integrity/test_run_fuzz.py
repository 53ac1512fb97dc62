"""Fuzz a real run directory (issue 22): every file of one tiny audit is mutated in turn — truncated, emptied,
replaced by random bytes, by a value of the wrong type, by one of the wrong shape — and `curator verify`,
`curator export` and the explorer's loader must each end with a correct result or one clear line (exit 2, one
ERROR line), never a traceback. A few mutations also re-run `curator audit` on the damaged run, which must
recompute what it can or refuse with one line. One tiny run (40 digits) is built once and copied per case.
"""
from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from curator.cli import main
from curator.data.problems import DataError
from curator.log import setup_logging
from curator.rundir import release_writer_lock

from integrity_inputs import ROOT  # noqa: F401  (puts the repository on sys.path)

TINY = ["--limit", "80", "--set", "heads.epochs=1", "--set", 'heads.heads=["ce"]', "--set", "evidence.folds=2",
        "--set", "audit.rounds=0", "--set", "ssl.epochs=1"]
MUTATIONS = ("truncate", "empty", "random", "wrong-type", "wrong-shape")
SKIP = {"run.lock", "report.html", "checkpoints/last.pt", "checkpoints/backbone.pt"}   # not read back as records


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiny") / "run"
    assert main(["audit", "--out", str(out), *TINY]) == 0
    release_writer_lock(out)
    pd.DataFrame({"sample_id": pd.read_parquet(out / "audit.parquet")["sample_id"].astype(str)[:2],
                  "action": ["keep", "drop"], "new_label": [-1, -1], "updated": "2026-01-01T00:00:00Z"}
                 ).to_parquet(out / "decisions.parquet")
    return out


def _files(run: Path) -> list[str]:
    return sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.is_file()
                  and str(p.relative_to(run)) not in SKIP and "cache" not in p.parts)


def _wrong_type(p: Path) -> bytes:
    suffix = p.suffix
    if suffix == ".json":
        return b'[1, "two", null]'
    if suffix == ".parquet":
        buf = io.BytesIO()
        pd.DataFrame({"x": ["a", "b"]}).to_parquet(buf)
        return buf.getvalue()
    buf = io.BytesIO()
    if suffix == ".npz":
        np.savez(buf, x=np.array(["a", "b"]))
    else:
        np.save(buf, np.array(["a", "b"]))
    return buf.getvalue()


def _wrong_shape(p: Path) -> bytes:
    raw = p.read_bytes()
    buf = io.BytesIO()
    if p.suffix == ".json":
        obj = json.loads(raw)
        return json.dumps({k: ({"x": -3} if isinstance(v, dict) else -3 if isinstance(v, (int, float)) else [v])
                           for k, v in obj.items()}).encode()
    if p.suffix == ".parquet":
        df = pd.read_parquet(io.BytesIO(raw))
        df.iloc[: max(len(df) // 2, 1), : max(df.shape[1] - 1, 1)].to_parquet(buf)
        return buf.getvalue()
    if p.suffix == ".npz":
        with np.load(io.BytesIO(raw), allow_pickle=False) as z:
            arrays = {k: (z[k][:-1] if z[k].ndim else z[k]) for k in z.files}
        np.savez(buf, **arrays)
        return buf.getvalue()
    a = np.load(io.BytesIO(raw), allow_pickle=False)
    np.save(buf, a.reshape(-1)[: max(a.size // 3, 1)])
    return buf.getvalue()


def mutate(p: Path, how: str) -> None:
    raw = p.read_bytes()
    data = {"truncate": lambda: raw[: len(raw) // 2], "empty": lambda: b"",
            "random": lambda: np.random.default_rng(len(raw)).bytes(max(len(raw), 64)),
            "wrong-type": lambda: _wrong_type(p), "wrong-shape": lambda: _wrong_shape(p)}[how]()
    p.write_bytes(data)


def _one_clear_line(code: int, err: str, allowed: tuple[int, ...]) -> None:
    assert "Traceback" not in err, err[-3000:]
    assert code in allowed, f"exit {code}\n{err[-3000:]}"
    if code == 2:
        errors = [line for line in err.splitlines() if " ERROR " in line]
        assert len(errors) == 1, err[-3000:]


def _explore(run: Path) -> None:
    from curator.explore.review import review_status
    from curator.explore.run import load_run

    try:
        r = load_run(run)
        r.knn()
        for head in ("ce",):
            r.head_array(head, "probs")
        review_status(r)
    except DataError as exc:
        assert "\n" not in str(exc)


def test_every_file_of_the_tiny_run_is_listed(tiny_run):
    names = _files(tiny_run)
    for must in ("stages/audit.json", "checkpoints/history.json", "knn.npz",
                 "heads/ce.npz", "embeddings.npy", "decisions.parquet", "config.json", "manifest.parquet"):
        assert must in names, names


@pytest.mark.parametrize("how", MUTATIONS)
def test_every_file_mutated_ends_in_a_result_or_one_line(tiny_run, tmp_path, how, capsys):
    setup_logging()
    for name in _files(tiny_run):
        run = Path(shutil.copytree(tiny_run, tmp_path / name.replace("/", "_")))
        try:
            mutate(run / name, how)
        except Exception:  # noqa: BLE001 - a file that has no such shape (e.g. a scalar): nothing to mutate
            continue
        capsys.readouterr()
        code = main(["verify", str(run)])
        out, err = capsys.readouterr()
        _one_clear_line(code, err, (0, 1, 2))
        if code == 1:
            assert name in out or "stages/" in out, (name, out)
        code = main(["export", str(run), "--policy", "clean", "--out", str(tmp_path / f"{name.replace('/', '_')}.csv")])
        _one_clear_line(code, capsys.readouterr().err, (0, 2))
        _explore(run)
        shutil.rmtree(run)


@pytest.mark.parametrize("name", ["stages/evidence.json", "stages/pretrain.json", "checkpoints/history.json",
                                  "knn.npz", "heads/ce.npz", "provenance.json", "hygiene.json"])
def test_audit_on_a_damaged_run_recomputes_or_refuses_with_one_line(tiny_run, tmp_path, name, capsys):
    setup_logging()
    run = Path(shutil.copytree(tiny_run, tmp_path / "run"))
    mutate(run / name, "random")
    capsys.readouterr()
    code = main(["audit", "--out", str(run), *TINY])
    release_writer_lock(run)
    _one_clear_line(code, capsys.readouterr().err, (0, 2))
    if code == 0:
        assert main(["verify", str(run)]) in (0, 1)


def test_verify_names_what_is_intact_stale_and_refused(tiny_run, tmp_path, capsys):
    import json as _json

    run = Path(shutil.copytree(tiny_run, tmp_path / "run"))
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()}
    assert main(["verify", str(run), "--json"]) == 0
    assert _json.loads(capsys.readouterr().out)["counts"]["stale"] == 0
    raw = (run / "signals.parquet").read_bytes()
    (run / "signals.parquet").write_bytes(raw[: len(raw) // 2])              # truncated stage output: stale
    pd.DataFrame({"sample_id": ["x"], "action": ["explode"], "new_label": [-1]}).to_parquet(run / "decisions.parquet")
    (run / "stages/hygiene.json").write_text("[]")                           # not a record: the stage runs again
    assert main(["verify", str(run), "--json"]) == 1
    files = {f["file"]: f for f in _json.loads(capsys.readouterr().out)["files"]}
    assert files["signals.parquet"]["status"] == "stale" and "truncated" in files["signals.parquet"]["why"]
    assert files["decisions.parquet"]["status"] == "refused" and "explode" in files["decisions.parquet"]["why"]
    assert files["stages/hygiene.json"]["status"] == "stale"
    assert files["audit.parquet"]["status"] == "intact"
    after = {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()}
    assert {p: t for p, t in after.items() if p in before and p.name not in
            ("signals.parquet", "decisions.parquet", "hygiene.json")} == {
        p: t for p, t in before.items() if p.name not in ("signals.parquet", "decisions.parquet", "hygiene.json")}
    assert set(after) == set(before)   # nothing written
