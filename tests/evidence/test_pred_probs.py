"""--pred-probs: the user's out-of-sample probabilities, read and checked (curator.evidence.pred_probs), and audited."""
import json
import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from curator.cli import main
from curator.data.problems import DataError
from curator.evidence.pred_probs import in_sample_warning, read_pred_probs

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # repo root, for tests.fixtures_images
from tests.fixtures_images import folder_with_a_broken_image  # noqa: E402

NAMES = ["cat", "dog", "owl"]
IDS = np.array([f"s{i}" for i in range(6)])


def probs(n=6, C=3):
    P = np.full((n, C), 0.1)
    P[np.arange(n), np.arange(n) % C] = 0.8
    return P


def read(path, **kw):
    return read_pred_probs(path, IDS, NAMES, **kw)


def test_npy_rows_and_columns_in_dataset_order(tmp_path):
    np.save(tmp_path / "p.npy", probs().astype(np.float32))
    P = read(tmp_path / "p.npy")
    assert P.shape == (6, 3) and P.dtype == np.float32
    np.testing.assert_allclose(P, probs(), rtol=1e-6)


def test_parquet_is_mapped_by_sample_id_and_class_name(tmp_path):
    P = probs()
    df = pd.DataFrame(P, columns=NAMES)
    df.insert(0, "sample_id", IDS)
    extra = pd.DataFrame({"sample_id": ["not-a-training-sample"], "cat": [1.0], "dog": [0.0], "owl": [0.0]})
    shuffled = pd.concat([df, extra]).sample(frac=1, random_state=3)[["owl", "sample_id", "cat", "dog"]]
    shuffled.to_parquet(tmp_path / "p.parquet")
    np.testing.assert_allclose(read(tmp_path / "p.parquet"), P, rtol=1e-6)


def test_logits_are_turned_into_probabilities_only_when_said(tmp_path):
    Z = np.log(probs()) + 5.0                              # logits of the same probabilities
    np.save(tmp_path / "z.npy", Z)
    np.testing.assert_allclose(read(tmp_path / "z.npy", kind="logits"), probs(), rtol=1e-5)
    with pytest.raises(DataError, match="sums to"):
        read(tmp_path / "z.npy")


def _fifo(tmp_path):
    p = tmp_path / "fifo.npy"
    os.mkfifo(p)
    return p


class Evil:
    def __reduce__(self):
        return (os.system, ("touch EXECUTED",))


def _bad_cases(tmp_path):
    """(path, words the one-line message must contain) for every bad input of the issue."""
    cases = []
    P = probs()

    def npy(name, arr):
        np.save(tmp_path / name, arr)
        return tmp_path / name

    cases.append((tmp_path / "missing.npy", "does not exist"))
    (tmp_path / "adir.npy").mkdir()
    cases.append((tmp_path / "adir.npy", "is a directory"))
    cases.append((_fifo(tmp_path), "is a FIFO"))
    full = npy("full.npy", P)
    (tmp_path / "trunc.npy").write_bytes(full.read_bytes()[:-20])
    cases.append((tmp_path / "trunc.npy", "truncated or corrupt"))
    obj = np.empty(2, dtype=object)
    obj[0] = Evil()
    np.save(tmp_path / "evil.npy", obj, allow_pickle=True)
    cases.append((tmp_path / "evil.npy", "Python objects"))
    (tmp_path / "evil2.npy").write_bytes(pickle.dumps(Evil()))
    cases.append((tmp_path / "evil2.npy", "Python objects"))          # a bare pickle: refused, not loaded
    cases.append((npy("1d.npy", P[:, 0]), "2-D"))
    cases.append((npy("cols.npy", P[:, :2] / P[:, :2].sum(1, keepdims=True)), "2 columns but the dataset has 3 classes"))
    cases.append((npy("rows.npy", P[:5]), "5 rows but the dataset has 6"))
    nan = P.copy(); nan[4, 1] = np.nan
    cases.append((npy("nan.npy", nan), "row 4 (sample 's4') has NaN or inf"))
    inf = P.copy(); inf[2, 0] = np.inf
    cases.append((npy("inf.npy", inf), "row 2 (sample 's2') has NaN or inf"))
    neg = P.copy(); neg[3] = [-0.1, 0.6, 0.5]
    cases.append((npy("neg.npy", neg), "row 3 (sample 's3') has a negative probability"))
    off = P.copy(); off[5] = [0.5, 0.2, 0.1]
    cases.append((npy("sum.npy", off), "row 5 (sample 's5') sums to 0.8"))
    cases.append((npy("str.npy", np.array([["a", "b", "c"]] * 6)), "not real numbers"))
    (tmp_path / "p.csv").write_text("a,b\n")
    cases.append((tmp_path / "p.csv", "unsupported format"))
    df = pd.DataFrame(P, columns=NAMES)
    df.insert(0, "sample_id", IDS)
    df.drop(columns="owl").assign(bat=0.1).to_parquet(tmp_path / "names.parquet")
    cases.append((tmp_path / "names.parquet", "missing: ['owl']"))
    df.drop(columns="sample_id").to_parquet(tmp_path / "noid.parquet")
    cases.append((tmp_path / "noid.parquet", "no 'sample_id' column"))
    df.iloc[1:].to_parquet(tmp_path / "lacks.parquet")
    cases.append((tmp_path / "lacks.parquet", "no row for training sample 's0'"))
    pd.concat([df, df.iloc[[2]]]).to_parquet(tmp_path / "dup.parquet")
    cases.append((tmp_path / "dup.parquet", "sample 's2' has more than one row"))
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not really")
    cases.append((tmp_path / "bad.parquet", "not a readable Parquet file"))
    return cases


def test_every_bad_file_is_one_line_naming_the_file_and_nothing_is_executed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for path, words in _bad_cases(tmp_path):
        with pytest.raises(DataError) as err:
            read(path)
        msg = str(err.value)
        assert words in msg and str(path) in msg and "\n" not in msg, (path, msg)
    assert not (tmp_path / "EXECUTED").exists()


def test_in_sample_probabilities_are_warned_about():
    y = np.arange(300) % 3
    memorised = np.full((300, 3), 0.01)
    memorised[np.arange(300), y] = 0.98
    assert "look in-sample" in in_sample_warning(memorised, y)
    honest = memorised.copy()
    honest[:30] = honest[:30][:, [1, 2, 0]]                # 10 % disagree with their label, as real noise makes them
    assert in_sample_warning(honest, y) is None


def _digits_with_planted_errors():
    from curator.data.options import DatasetOptions
    from curator.data.registry import load_dataset

    ds = load_dataset(DatasetOptions(dataset="digits", noise="flip", noise_rate=0.2, seed=0, limit=300))
    return ds.train.reset_index(drop=True), ds.class_names


ARGS = ["audit", "--dataset", "digits", "--imbalance", "none", "--noise", "flip", "--noise-rate", "0.2", "--seed", "0", "--limit", "300"]


def test_perfect_probabilities_flag_exactly_the_planted_errors(tmp_path, capsys):
    train, names = _digits_with_planted_errors()
    C, t = len(names), train["true_label"].to_numpy()
    P = np.full((len(train), C), 1e-4)
    P[np.arange(len(train)), t] = 1 - 1e-4 * (C - 1)
    df = pd.DataFrame(P, columns=names)
    df.insert(0, "sample_id", train["sample_id"].astype(str).to_numpy())
    df = df.sample(frac=1, random_state=0)[["sample_id"] + names[::-1]]      # rows and columns in another order
    df.to_parquet(tmp_path / "pp.parquet")
    out = tmp_path / "run"
    assert main([*ARGS, "--pred-probs", str(tmp_path / "pp.parquet"), "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    audit = pd.read_parquet(out / "audit.parquet")
    planted = (train["label"] != train["true_label"]).to_numpy()
    assert planted.sum() > 20
    np.testing.assert_array_equal(audit["sample_id"].to_numpy(), train["sample_id"].astype(str).to_numpy())
    np.testing.assert_array_equal(audit["is_label_issue"].to_numpy(), planted)
    np.testing.assert_array_equal(audit["suggested_label"].to_numpy()[planted], t[planted])
    assert summary["evidence"]["grade"] == "strong" and summary["evidence"]["representation"]["kind"] == "pred_probs"
    assert not (out / "knn.npz").exists() and not (out / "embeddings.npy").exists()   # no embeddings: no graph
    np.testing.assert_allclose(np.load(out / "oof_probs.npy"), P, rtol=1e-5)
    from curator.explore.run import load_run
    assert load_run(out).knn() is None


def test_a_bad_probability_file_exits_2_and_leaves_no_run_directory(tmp_path, capsys):
    P = np.full((300, 10), 0.1)                           # digits --limit 300: 300 training samples, 10 classes
    P[7, 0] = np.nan
    np.save(tmp_path / "nan.npy", P)
    out = tmp_path / "run"
    assert main([*ARGS, "--pred-probs", str(tmp_path / "nan.npy"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "nan.npy" in err and "row 7" in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.slow
def test_the_explorer_works_without_embeddings(tmp_path, monkeypatch, capsys):
    from streamlit.testing.v1 import AppTest

    train, names = _digits_with_planted_errors()
    P = np.full((len(train), len(names)), 0.02)
    P[np.arange(len(train)), train["true_label"].to_numpy()] = 0.82
    np.save(tmp_path / "p.npy", P)
    out = tmp_path / "run"
    assert main([*ARGS, "--pred-probs", str(tmp_path / "p.npy"), "--out", str(out)]) == 0
    capsys.readouterr()
    monkeypatch.setenv("CURATOR_RUN_DIR", str(out))
    monkeypatch.setenv("CURATOR_MAP_METHOD", "pca")
    app = AppTest.from_file(str(Path(__file__).resolve().parents[2] / "ui" / "app.py"), default_timeout=120)
    app.run()
    assert not app.exception, app.exception
    assert any("Evidence" in i.value and "moderate" in i.value for i in app.info)   # mean top probability 0.82
    assert any("no embeddings" in c.value for c in app.caption)
    for page, words in [("views/flagged.py", None), ("views/map.py", "no map"),
                        ("views/sample.py", "No nearest neighbours"), ("views/review.py", None)]:
        app.switch_page(page).run()
        assert not app.exception, (page, app.exception)
        if words:
            assert any(words in i.value for i in app.info), (page, [i.value for i in app.info])


def _audit_folder(root: Path, pp: Path, out: Path) -> int:
    return main(["audit", "--dataset", "imagefolder", "--root", str(root), "--pred-probs", str(pp), "--out", str(out)])


def test_an_image_folder_with_a_bad_probability_file_fails_before_any_image_is_decoded(tmp_path, capsys, monkeypatch):
    import pipelines.prepare as prepare

    decoded = []
    monkeypatch.setattr(prepare, "check_images", lambda *a, **k: decoded.append(1))
    root = folder_with_a_broken_image(tmp_path / "imgs")
    P = np.full((13, 2), 0.5)                  # 13 files; which of them decode is not known yet
    P[3] = [0.5, np.inf]
    np.save(tmp_path / "inf.npy", P)
    out = tmp_path / "run"
    assert _audit_folder(root, tmp_path / "inf.npy", out) == 2
    err = capsys.readouterr().err
    assert "inf.npy" in err and "row 3" in err and "NaN or inf" in err and "Traceback" not in err
    assert not decoded and not out.exists()


def test_rows_that_do_not_match_the_readable_images_leave_no_run_directory(tmp_path, capsys):
    """A .npy row for every file, the unreadable one included: found after the image check, and the run directory
    that check began is removed (whole or absent)."""
    root = folder_with_a_broken_image(tmp_path / "imgs")
    np.save(tmp_path / "p.npy", np.full((13, 2), 0.5))
    out = tmp_path / "run"
    assert _audit_folder(root, tmp_path / "p.npy", out) == 2
    err = capsys.readouterr().err
    assert "has 13 rows but the dataset has 12 training samples" in err and "Traceback" not in err
    assert "1 sample was left out by the checks (unreadable or invalid: a/broken.jpg): drop their rows" in err
    assert not out.exists()
    np.save(tmp_path / "p.npy", np.full((14, 2), 0.5))      # more rows than files: refused before the image check
    assert _audit_folder(root, tmp_path / "p.npy", out) == 2
    assert "has 14 rows but the dataset has 13 training samples" in capsys.readouterr().err and not out.exists()


def test_read_before_the_image_check_takes_the_rows_the_file_has(tmp_path):
    np.save(tmp_path / "p.npy", probs(n=5).astype(np.float32))            # one of the 6 samples may still drop out
    assert read(tmp_path / "p.npy", match_rows=False).shape == (5, 3)
    with pytest.raises(DataError, match="has 5 rows but the dataset has 6"):
        read(tmp_path / "p.npy")
    df = pd.DataFrame(probs(n=4), columns=NAMES)
    df.insert(0, "sample_id", IDS[:4])
    df.loc[2, "dog"] = -0.1
    df.to_parquet(tmp_path / "p.parquet")
    with pytest.raises(DataError, match="sample 's2'.*negative"):
        read(tmp_path / "p.parquet", match_rows=False)
