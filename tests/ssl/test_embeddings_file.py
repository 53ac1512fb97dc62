"""`load_embeddings_file`: .npy and .parquet, with errors that name the file and the mismatch."""
import numpy as np
import pandas as pd
import pytest

from curator.data.problems import DataError
from curator.embeddings import load_embeddings_file


def test_npy_roundtrip(tmp_path):
    x = np.random.default_rng(0).normal(size=(7, 5)).astype(np.float16)
    np.save(tmp_path / "e.npy", x)
    out = load_embeddings_file(tmp_path / "e.npy", 7)
    assert out.dtype == np.float32 and np.allclose(out, x.astype(np.float32))


def test_wrong_rows_names_file_and_counts(tmp_path):
    np.save(tmp_path / "e.npy", np.zeros((6, 3), np.float32))
    with pytest.raises(DataError, match=r"e\.npy.*6 rows.*9 training samples"):
        load_embeddings_file(tmp_path / "e.npy", 9)


def test_parquet_list_and_columns(tmp_path):
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    pd.DataFrame({"sample_id": list("abcd"), "embedding": list(x)}).to_parquet(tmp_path / "l.parquet")
    pd.DataFrame(x, columns=["d0", "d1", "d2"]).to_parquet(tmp_path / "c.parquet")
    assert np.array_equal(load_embeddings_file(tmp_path / "l.parquet", 4), x)
    assert np.array_equal(load_embeddings_file(tmp_path / "c.parquet", 4), x)


def test_bad_inputs(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_embeddings_file(tmp_path / "missing.npy", 3)
    x = np.ones((3, 2), np.float32)
    x[1, 0] = np.nan
    np.save(tmp_path / "nan.npy", x)
    with pytest.raises(DataError, match="row 1 has non-finite"):
        load_embeddings_file(tmp_path / "nan.npy", 3)
    np.save(tmp_path / "flat.npy", np.ones(3, np.float32))
    with pytest.raises(DataError, match="2-D"):
        load_embeddings_file(tmp_path / "flat.npy", 3)
    (tmp_path / "e.txt").write_text("1 2")
    with pytest.raises(DataError, match="unsupported format"):
        load_embeddings_file(tmp_path / "e.txt", 1)
