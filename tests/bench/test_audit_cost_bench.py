"""`curator bench audit-cost`: the cleanlab baseline and `curator audit --embeddings`, both as processes."""
import numpy as np
import pytest

from curator.bench import audit_cost
from curator.bench.scale import clothing1m_like
from curator.data.problems import DataError


def test_cleanlab_baseline_finds_planted_flips():
    rng = np.random.default_rng(0)
    t = rng.integers(0, 3, 300)
    X = (np.eye(3)[t] * 4 + rng.normal(size=(300, 3))).astype(np.float32)
    y = t.copy()
    flipped = rng.choice(300, 30, replace=False)
    y[flipped] = (t[flipped] + 1) % 3
    flag, score = audit_cost.cleanlab_pipeline(X, y, seed=0)
    assert flag.shape == score.shape == (300,)
    assert flag[flipped].mean() > 0.8 and flag[np.setdiff1d(np.arange(300), flipped)].mean() < 0.1
    assert score[flipped].mean() > score[np.setdiff1d(np.arange(300), flipped)].mean()


def test_bad_options_are_one_line_errors(bench_args, tmp_path):
    with pytest.raises(DataError, match="--repeats"):
        audit_cost.run(bench_args(audit_cost, repeats=0, synthetic=100, work_dir=str(tmp_path)))
    with pytest.raises(DataError, match="--limit"):
        audit_cost.run(bench_args(audit_cost, limit=-5, synthetic=100, work_dir=str(tmp_path)))
    with pytest.raises(DataError, match="cannot be combined"):
        audit_cost.run(bench_args(audit_cost, cifar_root=str(tmp_path), limit=100, work_dir=str(tmp_path)))
    with pytest.raises(DataError, match="not found"):
        audit_cost.run(bench_args(audit_cost, data_dir=str(tmp_path / "none"), work_dir=str(tmp_path)))


@pytest.mark.slow
def test_audit_cost_runs_both_sides_as_processes(tmp_path, bench_args):
    out = audit_cost.run(bench_args(audit_cost, synthetic=600, dim=64, repeats=2, work_dir=str(tmp_path),
                                    overrides=['heads.heads=["lasl"]', "heads.epochs=2", "evidence.folds=3"]))
    assert out["n"] == 600 and out["repeats"] == 2
    cl, cu = out["rows"]
    assert (cl["side"], cu["side"]) == ("cleanlab", "curator")
    assert len(out["runs"]) == 4 and [r["side"] for r in out["runs"]] == ["cleanlab", "curator", "curator", "cleanlab"]
    assert out["ratio"] == pytest.approx(cu["median_s"] / cl["median_s"], rel=0.01)
    # both detect the generator's planted noise on the same rows
    _, y, t = clothing1m_like(600, dim=64, seed=0)
    assert out["noise"] == pytest.approx(float((y != t).mean()), abs=1e-4)
    assert cl["auroc"] > 0.6 and cu["auroc"] > 0.6 and cl["flagged"] > 0 and cu["flagged"] > 0
    for stage in ("embed", "heads_lasl", "evidence", "audit", "report"):
        assert out["curator_stage_s"][stage] >= 0
    assert (tmp_path / "run" / "audit.parquet").exists()
