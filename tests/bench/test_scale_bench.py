"""`curator bench scale`: the Clothing1M-shaped generator and one real `curator audit --embeddings` run."""
import numpy as np
import pytest

from curator.bench import scale


def test_clothing1m_like_has_the_shape_it_promises():
    X, y, t = scale.clothing1m_like(20_000, dim=32, noise=0.38, seed=1)
    assert X.shape == (20_000, 32) and X.dtype == np.float16
    counts = np.bincount(t, minlength=14)
    assert len(counts) == 14 and 3.5 < counts.max() / counts.min() < 7          # largest ≈ 5× the smallest
    wrong = y != t
    assert 0.32 < wrong.mean() < 0.44                                           # ~38 % noise
    # structured: most wrong labels go to one of the two confusable neighbours of the true class
    to_neighbour = (y == (t + 1) % 14) | (y == (t + 3) % 14)
    assert to_neighbour[wrong].mean() > 0.7
    np.testing.assert_array_equal(scale.clothing1m_like(500, dim=8, seed=3)[1], scale.clothing1m_like(500, dim=8, seed=3)[1])


def test_growth_fit_recovers_a_line():
    fit = scale._fit([50_000, 200_000, 1_000_000], [10 + 2e-4 * n for n in (50_000, 200_000, 1_000_000)])
    assert fit["per_100k_s"] == pytest.approx(20.0, abs=0.01) and fit["intercept_s"] == pytest.approx(10.0, abs=0.01)


@pytest.mark.slow
def test_scale_bench_runs_the_real_audit(tmp_path, bench_args):
    out = scale.run(bench_args(scale, sizes="600", dim=64, work_dir=str(tmp_path),
                               overrides=['heads.heads=["lasl"]', "heads.epochs=2", "evidence.folds=3"]))
    (row,) = out["rows"]
    assert row["n"] == 600 and row["flagged"] > 0 and row["auroc"] > 0.6
    for stage in ("embed", "heads_lasl", "evidence", "signals", "audit", "report"):
        assert row[f"{stage}_s"] >= 0 and stage in out["stage_peak_gib"][600]
    assert (tmp_path / "run-600" / "audit.parquet").exists()


def test_clothing1m_like_draws_the_same_problem_at_every_n():
    """Sizes must be comparable: the class geometry comes from its own random stream, not after n draws."""
    def class_mean(n, seed):
        X, _, t = scale.clothing1m_like(n, dim=16, seed=seed)
        return X[t == 0].astype(np.float64).mean(0)

    same_problem = np.linalg.norm(class_mean(3_000, 1) - class_mean(12_000, 1))
    other_problem = np.linalg.norm(class_mean(3_000, 1) - class_mean(3_000, 2))
    assert same_problem < 0.5 * other_problem
