"""The run's one device switch (`--device`, ``ssl.device``) reaches every stage that computes after the embeddings
(heads, evidence: kNN graph and probe, hygiene), and a device this machine lacks is one clear line."""
import json

import numpy as np
import pandas as pd
import pytest
import torch

import curator.evidence.evidence as evidence_mod
import curator.evidence.graph as graph_mod
import pipelines.heads as heads_pipeline
import pipelines.hygiene as hygiene_pipeline
from curator.cli import main
from curator.device import DeviceError, select_device


def _write(tmp_path, n=120):
    rng = np.random.default_rng(0)
    t = rng.integers(0, 3, n)
    X = rng.normal(size=(3, 8))[t] * 3 + rng.normal(size=(n, 8))
    names = np.array(["cat", "dog", "owl"])
    pd.DataFrame({"path": [f"imgs/{i:04d}.jpg" for i in range(n)], "label": names[t]}).to_csv(
        tmp_path / "labels.csv", index=False)
    np.save(tmp_path / "emb.npy", X.astype(np.float32))
    return ["audit", "--dataset", "csv", "--root", str(tmp_path / "labels.csv"), "--embeddings",
            str(tmp_path / "emb.npy"), "--out", str(tmp_path / "run"), "--json",
            "--set", 'heads.heads=["lasl"]', "--set", "heads.epochs=2", "--set", "evidence.folds=3",
            "--set", "audit.rounds=1"]


def _spy(monkeypatch, module, name, seen, key):
    real = getattr(module, name)

    def wrapped(*args, **kwargs):
        seen.setdefault(key, []).append(str(kwargs.get("device")))
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapped)


def test_device_cpu_reaches_every_post_embedding_stage(tmp_path, monkeypatch, capsys):
    """The environment's default device is made unusable (CURATOR_DEVICE=cuda:7): a stage that chose its own device
    instead of taking the run's would fail; `--device cpu` must be what heads, kNN graph, probe and hygiene get."""
    args = _write(tmp_path)
    seen: dict[str, list[str]] = {}
    _spy(monkeypatch, heads_pipeline, "train_head", seen, "heads")
    _spy(monkeypatch, evidence_mod, "compute_graph", seen, "knn_graph")
    _spy(monkeypatch, evidence_mod, "oof_probs", seen, "probe")
    _spy(monkeypatch, graph_mod, "build_index", seen, "knn_index")
    _spy(monkeypatch, hygiene_pipeline, "run_checks", seen, "hygiene")
    monkeypatch.setenv("CURATOR_DEVICE", "cuda:7")
    with pytest.raises(DeviceError):                         # the default is now unusable
        select_device()
    code = main(args + ["--device", "cpu"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert json.loads(captured.out)["n_samples"] == 120
    assert set(seen) == {"heads", "knn_graph", "probe", "knn_index", "hygiene"}, seen
    assert all(d == "cpu" for ds in seen.values() for d in ds), seen


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_requested_without_cuda_is_one_line_before_any_work(tmp_path, capsys):
    args = _write(tmp_path)
    code = main(args + ["--device", "cuda"])
    err = capsys.readouterr().err
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "'cuda' requested but CUDA is not available" in lines[0], err
    assert "Traceback" not in err
    assert not (tmp_path / "run").exists()                     # checked before the run directory is made


def test_unknown_device_is_one_line(tmp_path, capsys):
    args = _write(tmp_path)
    code = main(args + ["--device", "gpu"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "device 'gpu' is not one curator runs on" in lines[0], err


def test_select_device_errors_are_config_errors():
    with pytest.raises(DeviceError, match="not one curator runs on"):
        select_device("tpu")
    with pytest.raises(DeviceError, match="not one curator runs on"):
        select_device("meta")
    assert select_device("cpu").type == "cpu"
