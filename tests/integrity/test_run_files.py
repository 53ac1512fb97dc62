"""Issue 22: a run directory, a review and an export are hostile input too.

Every JSON record read back is validated by its reader (a stage record that is not one makes the stage run
again; an input that is not one is refused with one line naming the file); files are what they claim (a
directory, FIFO or symlink out of the run is refused); a full or read-only disk is one line and leaves no
temporary file; review decisions carry only what a decision can be; CSV exports escape formulas; EXIF
orientation is applied. docs/datasets.md lists the cases.
"""
from __future__ import annotations

import errno
import io
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from curator.atomic import StorageError, check_regular
from curator.cli import main
from curator.data.problems import DataError
from curator.rundir import RunDir, acquire_writer_lock, release_writer_lock

from integrity_inputs import ROOT  # noqa: F401  (puts the repository on sys.path)


def _stage(run: RunDir, calls: list) -> bool:
    def fn():
        calls.append(1)
        run.write_npy("out.npy", np.arange(10))
    return run.run_stage("s", fn, inputs={"v": 1}, outputs=["out.npy"])


@pytest.mark.parametrize("content", ["[1, 2]", '"a string"', "{not json", "", "\x00\xff" * 10,
                                     '{"inputs": 5, "files": {}}', '{"inputs": "x", "files": {"out.npy": 3}}',
                                     '{"inputs": "x", "files": {"out.npy": {"size": -1, "sha256": "a"}}}'])
def test_a_stage_record_that_is_not_a_record_makes_the_stage_run_again(tmp_path, content):
    run, calls = RunDir(tmp_path / "run"), []
    assert _stage(run, calls) and not _stage(run, calls)
    (run / "stages/s.json").write_text(content)
    assert _stage(run, calls) and calls == [1, 1]
    assert not _stage(run, calls)


@pytest.mark.parametrize("content,why", [("[1]", "not a record"), ("{x", "not a valid record"), ('"s"', "not a record")])
def test_an_input_record_that_is_not_a_record_is_refused_with_its_name(tmp_path, content, why):
    run = RunDir(tmp_path / "run")
    (run / "config.json").write_text(content)
    with pytest.raises(DataError, match=f"config.json.*{why}"):
        run.read_json("config.json")
    assert run.read_json("config.json", {"d": 1}, recompute=True) == {"d": 1}


def test_a_broken_provenance_is_started_afresh(tmp_path):
    run = RunDir(tmp_path / "run")
    (run / "provenance.json").write_text('{"timings_s": {"heads": "slow"}}')
    run.record_timing("audit", 1.5)
    assert json.loads((run / "provenance.json").read_text())["timings_s"] == {"audit": 1.5}


def test_files_that_are_not_files_are_refused(tmp_path):
    run = RunDir(tmp_path / "run")
    (run / "config.json").mkdir()
    with pytest.raises(DataError, match="is a directory"):
        run.read_json("config.json")
    os.mkfifo(run / "a.json")
    with pytest.raises(DataError, match="is a FIFO"):   # reading a FIFO would hang
        run.read_json("a.json")
    with pytest.raises(DataError, match="is a FIFO"):
        run.write_json("a.json", {})
    (tmp_path / "outside").mkdir()
    os.symlink(tmp_path / "outside", run / "heads")
    with pytest.raises(DataError, match="leads out of the run directory"):
        run.write_npy("heads/x.npy", np.zeros(3))
    assert not list((tmp_path / "outside").iterdir())
    with pytest.raises(DataError, match="does not exist"):
        check_regular(tmp_path / "nope")


def test_a_lock_that_is_a_directory_and_a_run_that_is_a_file(tmp_path):
    (tmp_path / "run" / "run.lock").mkdir(parents=True)
    with pytest.raises(DataError, match="run.lock.*a directory"):
        acquire_writer_lock(tmp_path / "run")
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="is a file, not a directory"):
        RunDir(tmp_path / "file")
    code = main(["audit", "--limit", "60", "--out", str(tmp_path / "file")])
    assert code == 2


def test_a_full_disk_is_one_line_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    run = RunDir(tmp_path / "run")
    real = os.replace

    def full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(StorageError, match="audit.parquet.*no space left"):
        run.write_parquet("audit.parquet", pd.DataFrame({"a": [1]}))
    monkeypatch.setattr(os, "replace", real)
    assert sorted(p.name for p in run.path.iterdir()) == []


def test_a_read_only_run_directory_is_one_line(tmp_path, monkeypatch):
    import tempfile

    def read_only(*a, **k):
        raise OSError(errno.EROFS, "Read-only file system")
    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    with pytest.raises(StorageError, match="read-only"):
        RunDir(tmp_path / "run").write_json("x.json", {})


def _encoded(n: int = 4):
    from curator.data.images import EncodedImages

    blobs = []
    for _ in range(n):
        buf = io.BytesIO()
        Image.new("RGB", (8, 8), (7, 7, 7)).save(buf, format="PNG")
        blobs.append(buf.getvalue())
    offsets = np.cumsum([0] + [len(b) for b in blobs])
    return EncodedImages(np.frombuffer(b"".join(blobs), np.uint8), offsets)


def test_the_image_cache_checks_free_space_before_the_memory_map(tmp_path, monkeypatch):
    import shutil

    from curator.data import cache as image_cache

    images = _encoded()
    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 10**9 - 100, 100))
    with pytest.raises(StorageError, match="needs .* MiB"):
        image_cache.build(images, np.arange(4), 8, tmp_path / "c", sample_ids=list("abcd"), sources=list("abcd"))
    assert not list((tmp_path / "c").iterdir())


def test_a_float_cache_is_never_reused(tmp_path):
    from curator.data import cache as image_cache

    images = _encoded()
    args = dict(sample_ids=list("abcd"), sources=list("abcd"))
    cache, _ = image_cache.build(images, np.arange(4), 8, tmp_path / "c", **args)
    np.save(cache.path, np.zeros((4, 8, 8, 3), np.float32))   # same shape, other dtype, same name
    again, _ = image_cache.build(images, np.arange(4), 8, tmp_path / "c", **args)
    assert again.pixels.dtype == np.uint8 and int(again.pixels[0, 0, 0, 0]) == 7


def test_a_budget_plan_with_negative_epochs_is_not_a_plan():
    from curator.ssl.budget import BudgetPlan

    good = dict(budget_minutes=5.0, epochs=3, backbone="tiny_cnn", image_size=16, width=None, knn_every=1,
                warmup_epochs=1, seconds_per_epoch=1.0, estimated_minutes=1.0, reason="r")
    assert BudgetPlan.from_dict(good).epochs == 3
    for bad in ({"epochs": -3}, {"epochs": "3"}, {"image_size": 10**9}, {"seconds_per_epoch": -1.0}):
        with pytest.raises(ValueError, match="plan"):
            BudgetPlan.from_dict(good | bad)
    with pytest.raises(ValueError, match="plan"):
        BudgetPlan.from_dict([1, 2])


# --- review decisions and exports ------------------------------------------------------------------------
def _fixture(tmp_path: Path) -> Path:
    from tests.fixtures_run import write_fixture_run

    return write_fixture_run(tmp_path / "run")


def _decisions(run: Path, **change) -> None:
    ids = pd.read_parquet(run / "audit.parquet", columns=["sample_id"])["sample_id"].astype(str)[:3].tolist()
    df = pd.DataFrame({"sample_id": ids, "action": ["keep", "relabel", "drop"], "new_label": [-1, 2, -1],
                       "updated": "2026-01-01T00:00:00Z"})
    for k, v in change.items():
        if v is None:
            df = df.drop(columns=[k])
        else:
            df[k] = v
    df.to_parquet(run / "decisions.parquet")


BAD_DECISIONS = {
    "string-new-label": (dict(new_label=["-1", "two", "-1"]), "new_label"),
    "missing-column": (dict(action=None), "lacks column"),
    "unknown-action": (dict(action=["keep", "relabel", "explode"]), "'explode'"),
    "label-outside-classes": (dict(new_label=[-1, 99, -1]), "not a class of this run"),
    "label-on-a-keep": (dict(new_label=[5, 2, -1]), "not relabel"),
    "float-new-label": (dict(new_label=[-1.0, 2.5, -1.0]), "new_label"),
}


@pytest.fixture(scope="module")
def fixture_run(tmp_path_factory) -> Path:
    return _fixture(tmp_path_factory.mktemp("fx"))


@pytest.mark.parametrize("case", sorted(BAD_DECISIONS) + ["random-bytes"])
def test_bad_decisions_are_refused_by_the_export_with_one_line(fixture_run, tmp_path, case, capsys):
    import shutil

    run = Path(shutil.copytree(fixture_run, tmp_path / "run"))
    if case == "random-bytes":
        (run / "decisions.parquet").write_bytes(np.random.default_rng(0).bytes(300))
        why = "not a table of review decisions"
    else:
        change, why = BAD_DECISIONS[case]
        _decisions(run, **change)
    code = main(["export", str(run), "--policy", "clean", "--out", str(tmp_path / "x.csv")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    errors = [line for line in err.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "decisions.parquet" in errors[0] and why in errors[0], err
    assert not (tmp_path / "x.csv").exists()


def test_good_decisions_still_export(fixture_run, tmp_path):
    import shutil

    run = Path(shutil.copytree(fixture_run, tmp_path / "run"))
    _decisions(run)
    assert main(["export", str(run), "--policy", "clean", "--out", str(tmp_path / "x.parquet")]) == 0
    out = pd.read_parquet(tmp_path / "x.parquet")
    assert (out["decided_by"] == "review").sum() == 2   # keep + relabel; the drop is gone


def test_csv_cells_a_spreadsheet_would_run_are_escaped():
    from curator.audit.export import escape_formulas

    t = pd.DataFrame({"source": ["=cmd|' /C calc'!A0", "+1", "-2", "@SUM(A1)", "\tx", "\rx", "ok", "a=b"],
                      "label": [-1, 1, 2, 3, 4, 5, 6, 7]})
    out = escape_formulas(t)
    assert out["source"].tolist() == ["'=cmd|' /C calc'!A0", "'+1", "'-2", "'@SUM(A1)", "'\tx", "'\rx", "ok", "a=b"]
    assert out["label"].tolist() == t["label"].tolist()   # numbers untouched
    assert t["source"][0].startswith("=")                  # the input (and so Parquet) unchanged


def test_exif_orientation_is_applied_and_noted():
    from curator.data.images import decode_image_bytes
    from curator.data.validate import conversion_kind

    img = Image.new("RGB", (20, 10), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6   # rotate 90° clockwise to show
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif.tobytes())
    pixels, note = decode_image_bytes(buf.getvalue())
    assert pixels.shape == (20, 10, 3) and "EXIF orientation 6" in note
    assert conversion_kind(note) == "exif_rotated"
    plain = io.BytesIO()
    img.save(plain, format="JPEG")
    pixels, note = decode_image_bytes(plain.getvalue())
    assert pixels.shape == (10, 20, 3) and note is None


def test_release(tmp_path):
    acquire_writer_lock(tmp_path / "r")
    release_writer_lock(tmp_path / "r")


# --- arrays read by position carry the ids digest of their samples ---------------------------------------
def test_a_graph_or_head_for_other_samples_is_refused_by_the_explorer(fixture_run, tmp_path):
    import shutil

    from curator.explore.run import load_run

    run = Path(shutil.copytree(fixture_run, tmp_path / "run"))
    assert load_run(run).knn() is not None and load_run(run).head_array("gdw", "omega") is not None
    with np.load(run / "knn.npz") as z:
        arrays = {k: z[k] for k in z.files}
    np.savez(run / "knn.npz", **(arrays | {"ids": np.array("0123456789abcdef")}))   # a reordered manifest's graph
    with pytest.raises(DataError, match="knn.npz.*other samples"):
        load_run(run).knn()
    np.savez(run / "knn.npz", **{k: v for k, v in arrays.items() if k != "ids"})    # written before the change
    with pytest.raises(DataError, match="knn.npz.*before curator recorded"):
        load_run(run).knn()
    np.savez(run / "knn.npz", **(arrays | {"indices": arrays["indices"].astype(np.float32)}))
    with pytest.raises(DataError, match="not a kNN graph"):
        load_run(run).knn()
    with np.load(run / "heads/gdw.npz") as z:
        head = {k: z[k] for k in z.files}
    np.savez(run / "heads/gdw.npz", **(head | {"ids": np.array("0123456789abcdef")}))
    with pytest.raises(DataError, match="gdw.npz.*other samples"):
        load_run(run).head_array("gdw", "omega")


def test_embeddings_for_another_order_are_not_mapped(fixture_run, tmp_path):
    import shutil

    from curator.explore.embedding_map import embedding_map

    run = Path(shutil.copytree(fixture_run, tmp_path / "run"))
    assert len(embedding_map(run, method="pca")) > 0
    man = pd.read_parquet(run / "manifest.parquet")
    man.iloc[::-1].reset_index(drop=True).to_parquet(run / "manifest.parquet")   # reordered (the record rewritten too)
    RunDir(run, create=False).record_files("prepare", ["manifest.parquet"])
    (run / "umap.parquet").unlink()
    with pytest.raises(DataError, match="embeddings.npy.*in this order"):
        embedding_map(run, method="pca")


# --- weights and the encoder checkpoint ------------------------------------------------------------------
@pytest.mark.parametrize("bad", ["nan", "inf", "complex", "sparse", "meta"])
def test_weights_that_are_not_dense_finite_real_tensors_are_refused(tmp_path, bad):
    import torch

    from curator.ssl.weights import WeightsError, read_weights

    t = {"nan": torch.tensor([1.0, float("nan")]), "inf": torch.tensor([float("inf")]),
         "complex": torch.tensor([1 + 2j]), "sparse": torch.eye(2).to_sparse(),
         "meta": torch.empty(2, device="meta")}[bad]
    try:
        torch.save({"w": t}, tmp_path / "w.pt")
    except Exception:  # noqa: BLE001 - a tensor torch cannot save: nothing to refuse
        pytest.skip(f"torch cannot save a {bad} tensor")
    with pytest.raises(WeightsError, match="'w'"):
        read_weights(tmp_path / "w.pt")


@pytest.mark.parametrize("change", [{"std": [0.0, 0.2, 0.2]}, {"mean": ["a", 0, 0]}, {"nan": True}])
def test_a_crafted_encoder_checkpoint_is_one_line(tmp_path, change):
    import torch

    from curator.ssl.embed import load_backbone, save_backbone
    from curator.ssl.backbones import build_backbone
    from curator.ssl.augment import AugmentRecipe

    net, info = build_backbone("tiny_cnn", 8, 4)
    save_backbone(tmp_path / "b.pt", net, name="tiny_cnn", width=4, feat_dim=8, image_size=8, method="simsiam",
                  rec=AugmentRecipe())
    load_backbone(tmp_path / "b.pt", torch.device("cpu"))   # as written: loads
    meta = torch.load(tmp_path / "b.pt", weights_only=True)
    if "nan" in change:
        k = next(iter(meta["backbone_state"]))
        meta["backbone_state"][k] = meta["backbone_state"][k].float() * float("nan")
    else:
        meta["recipe"] = dict(meta["recipe"]) | change
    torch.save(meta, tmp_path / "b.pt")
    with pytest.raises(DataError, match="b.pt.*not a usable encoder"):
        load_backbone(tmp_path / "b.pt", torch.device("cpu"))


def test_the_cache_folder_removed_while_the_cache_is_built_is_one_line(tmp_path, monkeypatch):
    import shutil as _shutil

    from curator.data import cache as image_cache

    real = image_cache._decode_pil

    def decode_then_remove(tmp, *a, **k):
        out = real(tmp, *a, **k)
        _shutil.rmtree(tmp_path / "c")
        return out
    monkeypatch.setattr(image_cache, "_decode_pil", decode_then_remove)
    with pytest.raises(DataError, match="was removed while the cache was built"):
        image_cache.build(_encoded(), np.arange(4), 8, tmp_path / "c", sample_ids=list("abcd"), sources=list("abcd"))


def test_a_stage_never_writes_through_a_symlinked_folder(tmp_path):
    run, calls = RunDir(tmp_path / "run"), []
    (tmp_path / "outside").mkdir()
    os.symlink(tmp_path / "outside", run / "heads")

    def fn():
        calls.append(1)
        (run / "heads" / "x.npz").write_bytes(b"x")
    with pytest.raises(DataError, match="leads out of the run directory"):
        run.run_stage("heads_x", fn, inputs={}, outputs=["heads/x.npz"])
    assert not calls and not list((tmp_path / "outside").iterdir())


def test_verify_checks_the_pins_against_the_dataset_when_present(tmp_path, capsys):
    from curator.data.options import DatasetOptions
    from pipelines.prepare import prepare_run

    from integrity_inputs import image_bytes, image_folder

    folder = image_folder(tmp_path / "f")
    run, _ = prepare_run(tmp_path / "run", DatasetOptions(dataset="imagefolder", root=str(folder)))
    release_writer_lock(run.path)
    assert main(["verify", str(run.path)]) == 0
    (folder / "dog/1.png").write_bytes(image_bytes(seed=91, size=9))   # replaced after the run read it
    capsys.readouterr()
    assert main(["verify", str(run.path)]) == 1
    out = capsys.readouterr().out
    assert "stale" in out and "dog/1.png" in out and "manifest.parquet" in out
    shutil_rm = __import__("shutil").rmtree
    shutil_rm(folder)                                                    # the dataset not present: pins not checked
    capsys.readouterr()
    assert main(["verify", str(run.path)]) == 0
    assert "pins not checked: the dataset folder" in capsys.readouterr().out
