"""--budget MINUTES: measured once, turned into epochs once, recorded and reused; a run cut by the wall-clock
cap is partial and the next run (a larger budget, more epochs, or the same command) continues from last.pt."""
import json

import pytest
import torch

import curator.ssl.budget as budget
from curator.cli import main
from curator.ssl.budget import Candidate, nice_floor, plan
from curator.ssl.config import SSLConfig

DIGITS = ["--dataset", "digits", "--limit", "256", "--noise", "none", "--imbalance", "none"]


def _hist(run):
    return json.loads((run / "checkpoints" / "history.json").read_text())


def _fixed_speed(monkeypatch, train=1000.0, embed=20000.0):
    calls = []

    def fake(cfg, cand, device, **kw):
        calls.append(cand.key)
        return {"train_images_per_s": train, "embed_images_per_s": embed, "probe_batch": 8, "probe_steps": 2}
    monkeypatch.setattr(budget, "measure", fake)
    return calls


def test_nice_floor():
    assert [nice_floor(x) for x in (0.5, 1, 7.9, 13, 799, 5000)] == [0, 1, 6, 12, 600, 800]


def test_budget_picks_epochs_that_fit_and_records_them(tmp_path, capsys):
    torch.set_num_threads(2)
    run = tmp_path / "run"
    assert main(["pretrain", *DIGITS, "--out", str(run), "--budget", "0.25", "--json"]) == 0
    log = capsys.readouterr().err
    rec = json.loads((run / "checkpoints" / "budget.json").read_text())
    p = rec["plan"]
    speed = p["measurements"][f"tiny_cnn@8/w{p['width']}" if p["width"] else "tiny_cnn@8"]["train_images_per_s"]
    assert p["epochs"] >= 1 and p["epochs"] * 256 / speed <= 0.25 * 60            # the schedule fits the budget
    assert p["estimated_minutes"] <= 0.25 and "affords" in p["reason"]
    hist = _hist(run)
    assert hist["epochs"] == hist["epochs_done"] == p["epochs"] == len(hist["history"]) and not hist["partial"]
    assert hist["budget"]["reason"] == p["reason"]
    assert "pre-training budget: " in log and p["reason"] in log
    # the same command again: the recorded plan is reused (no measurement), the stage is up to date
    before = (run / "checkpoints" / "backbone.pt").stat().st_mtime_ns
    assert main(["pretrain", *DIGITS, "--out", str(run), "--budget", "0.25"]) == 0
    log = capsys.readouterr().err
    assert "reusing the plan" in log and "budget: tiny_cnn" not in log
    assert (run / "checkpoints" / "backbone.pt").stat().st_mtime_ns == before


def test_capped_run_continues_with_a_larger_budget(tmp_path, monkeypatch):
    torch.set_num_threads(2)
    calls = _fixed_speed(monkeypatch, train=4.5 * 256 / 60)      # 1 minute = 4.5 epochs of 256 images: 4 planned
    run = tmp_path / "run"
    # a 1-minute budget plans 4 epochs; a tiny wall-clock cap stops after the first: partial
    assert main(["pretrain", *DIGITS, "--out", str(run), "--budget", "1", "--set", "ssl.max_minutes=0.00001"]) == 0
    h1 = _hist(run)
    assert h1["epochs"] == 4 and h1["epochs_done"] == 1 and h1["partial"] and h1["stopped_by"] == "max_minutes"
    # a larger budget: more epochs, continued from last.pt (not "up to date", not from scratch)
    assert main(["pretrain", *DIGITS, "--out", str(run), "--budget", "2"]) == 0
    h2 = _hist(run)
    assert h2["epochs"] == 8 and h2["epochs_done"] == 8 and not h2["partial"] and h2["resumed_from"] == 1
    assert [r["epoch"] for r in h2["history"]] == list(range(1, 9))
    assert [r["of"] for r in h2["history"]] == [4] + [8] * 7          # which schedule each epoch was trained in
    assert calls == ["tiny_cnn@8/w16"]                                 # measured once, re-planned from the record
    # more epochs given outright: continues again
    assert main(["pretrain", *DIGITS, "--out", str(run), "--epochs", "10"]) == 0
    h3 = _hist(run)
    assert h3["epochs_done"] == 10 and h3["resumed_from"] == 8 and h3["budget"] is None


def test_same_command_continues_a_partial_run(tmp_path):
    torch.set_num_threads(2)
    run = tmp_path / "run"
    cmd = ["pretrain", *DIGITS, "--out", str(run), "--epochs", "3", "--set", "ssl.max_minutes=0.00001"]
    assert main(cmd) == 0
    assert _hist(run)["epochs_done"] == 1 and _hist(run)["partial"]
    assert main(cmd) == 0                                  # the cap again: one more epoch each time
    assert _hist(run)["epochs_done"] == 2 and _hist(run)["resumed_from"] == 1
    assert main(["pretrain", *DIGITS, "--out", str(run), "--epochs", "3"]) == 0
    h = _hist(run)
    assert h["epochs_done"] == 3 and not h["partial"]
    stage = json.loads((run / "stages" / "pretrain.json").read_text())
    assert main(["pretrain", *DIGITS, "--out", str(run), "--epochs", "3"]) == 0     # complete: up to date now
    assert json.loads((run / "stages" / "pretrain.json").read_text()) == stage


def test_cpu_ladder_falls_back_to_fitted_features_and_respects_fixed_epochs(monkeypatch):
    calls = _fixed_speed(monkeypatch, train=100.0)
    cfg = SSLConfig.from_dict({"batch_size": 64, "knn_k": 20})
    ladder = [Candidate("tiny_cnn", 32, 32), Candidate("patch_kmeans", 32, 128)]
    kw = dict(n_train=10_000, n_monitor=10_000, device=torch.device("cpu"), seed=0)
    p = plan(cfg, budget_minutes=5, candidates=ladder, **kw)
    assert p.backbone == "patch_kmeans" and p.epochs == 0 and "fewer than" not in p.reason and "200 epochs" in p.reason
    big = plan(cfg, budget_minutes=5 * 60 * 24, candidates=ladder, previous=p, **kw)  # a day affords a real schedule
    assert big.backbone == "tiny_cnn" and big.epochs >= 200
    fixed = plan(cfg, budget_minutes=5, candidates=ladder, fixed_epochs=7, previous=p, **kw)
    assert fixed.backbone == "tiny_cnn" and fixed.epochs == 7
    assert calls == ["tiny_cnn@32/w32"]                 # measured once; the other plans reuse the measurement


def test_budget_and_weights_resolution():
    from curator.data import DatasetOptions
    from curator.data.registry import load_dataset
    from curator.ssl.resolve import resolve_config

    ds = load_dataset(DatasetOptions(limit=32))
    cpu = torch.device("cpu")
    assert resolve_config(ds, {"budget_minutes": 1.0}, cpu).epochs is None      # left to the plan
    assert resolve_config(ds, {"budget_minutes": 1.0, "epochs": 3}, cpu).epochs == 3
    with pytest.raises(Exception, match="does not exist"):
        resolve_config(ds, SSLConfig(weights="/nonexistent/w.pt"), cpu)
