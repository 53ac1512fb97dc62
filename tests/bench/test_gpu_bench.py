"""`curator bench gpu`: the tiny mode runs every part on the CPU, parts are capped and isolated, a failing part
does not stop the others, and the GPU run's data packs within the 64 MiB that travel."""
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from curator.bench import gpu, gpu_data, gpu_parts
from curator.data.problems import DataError

SHARED = [Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "cifar10n",
          Path("/work/shared/datasets/cifar10n")]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("gpu")
    src = gpu_data.synthetic_source(root / "source")
    gpu_data.pack_data(src, root / "data", n_audit=150, n_test=40)
    return root / "data"


def test_tiny_runs_every_part(bench_args, tiny_data, tmp_path):
    res = gpu.run(bench_args(gpu, tiny=True, data=str(tiny_data), work=str(tmp_path / "w"), out=str(tmp_path / "gpu.json"), device="cpu"))
    parts = res["parts"]
    assert list(parts) == list(gpu_parts.PARTS) and [r["part"] for r in res["rows"]] == list(gpu_parts.PARTS)
    assert {n: p["status"] for n, p in parts.items()} == {**{n: "ok" for n in gpu_parts.PARTS}, "audit_cpu": "skipped"}
    speed = parts["ssl_speed"]["rows"]
    assert [(r["variant"], r["batch"]) for r in speed] == [("fp32", 16), ("bf16+cl", 16), ("bf16+cl+compile", 16),
                                                           ("bf16+cl", 32), ("bf16+cl+compile", 32), ("fp32", 32)]
    for r in speed:
        if r["variant"].endswith("compile"):
            assert r["status"].startswith("skipped: torch.compile is measured on CUDA only")
        else:
            assert r["status"] == "ok" and r["epochs"] == 2 and r["seconds_per_epoch"] > 0 and r["images_per_s"] > 0
    budget = parts["ssl_budget"]
    assert budget["setting"] == parts["ssl_speed"]["best"] and budget["planned_epochs"] >= 1
    assert budget["epochs_done"] >= 1 and 0.0 <= budget["final_knn"] <= 1.0
    audit = parts["audit"]
    assert audit["device"] == "cpu" and audit["n"] == 150 and 0.5 < audit["auroc"] <= 1.0
    assert {"heads", "evidence", "hygiene", "signals", "audit"} <= set(audit["stage_s"])
    assert parts["audit_ssl"]["n"] == 32                                    # every image part 2 trained on
    knn = parts["knn"]["rows"][0]
    assert knn["backend"] == "torch-exact" and knn["recall@10"] >= 0.99   # exact search against fp32 exact
    assert parts["resnet50"]["images_per_s"] > 0 and parts["resnet50"]["dim"] == 2048
    assert all(p["part_s"] >= 0 and p["cap_s"] > 0 for p in parts.values())
    assert parts["resnet50"]["seconds"] <= parts["resnet50"]["part_s"]          # the part's own timing is kept
    decode = parts["jpeg_decode"]["rows"]
    assert [r["decoder"].split()[0] for r in decode] == ["torchvision", "pil"] * 2 and all(r["status"] == "ok" for r in decode)
    json.dumps(res)                                                        # the result file is plain JSON
    assert res["environment"]["device"] == "cpu" and res["tiny"] is True


def test_failing_part_is_recorded_and_the_rest_run(bench_args, tiny_data, tmp_path, monkeypatch):
    def broken(ctx):
        raise RuntimeError("CUDA error: out of memory\nmore detail")

    monkeypatch.setitem(gpu_parts.PARTS, "knn", (broken, 50, "broken"))
    res = gpu.run(bench_args(gpu, tiny=True, data=str(tiny_data), work=str(tmp_path / "w"), out=str(tmp_path / "gpu.json"), device="cpu",
                             parts="knn,resnet50"))
    assert res["parts"]["knn"]["status"] == "failed"
    assert res["parts"]["knn"]["reason"] == "RuntimeError: CUDA error: out of memory"
    assert res["parts"]["resnet50"]["status"] == "ok"
    written = json.loads((tmp_path / "gpu.json").read_text())           # kept after every part (a later kill loses none)
    assert written["parts"]["knn"]["status"] == "failed" and written["parts"]["resnet50"]["status"] == "ok"


def test_overall_cap_skips_later_parts_and_says_so(bench_args, tiny_data, tmp_path):
    res = gpu.run(bench_args(gpu, tiny=True, data=str(tiny_data), work=str(tmp_path / "w"), out=str(tmp_path / "gpu.json"), device="cpu",
                             parts="knn,resnet50", total_s=0.0))
    for name in ("knn", "resnet50"):
        assert res["parts"][name]["status"] == "skipped"
        assert res["parts"][name]["reason"].startswith("overall cap of 0 s reached")


def test_isolated_part_runs_in_a_child_and_is_stopped_at_its_cap(bench_args, tiny_data, tmp_path):
    res = gpu.run(bench_args(gpu, tiny=True, data=str(tiny_data), work=str(tmp_path / "w"), out=str(tmp_path / "gpu.json"), device="cpu",
                             parts="knn", isolate=True))
    assert res["isolate"] is True and res["parts"]["knn"]["status"] == "ok"
    assert res["parts"]["knn"]["rows"][0]["recall@10"] >= 0.99
    res = gpu.run(bench_args(gpu, tiny=True, data=str(tiny_data), work=str(tmp_path / "w2"), out=str(tmp_path / "gpu.json"), device="cpu",
                             parts="knn", isolate=True, cap_scale=0.005))          # a 0.25 s cap: killed while importing
    knn = res["parts"]["knn"]
    assert knn["status"] == "failed" and knn["reason"] == "stopped at its cap of 0 s" and knn["part_s"] < 5


def test_bad_input_is_one_clear_error(bench_args, tmp_path):
    with pytest.raises(DataError, match="lacks"):
        gpu.run(bench_args(gpu, data=str(tmp_path), device="cpu", out=str(tmp_path / "gpu.json")))
    with pytest.raises(DataError, match="unknown part"):
        gpu.run(bench_args(gpu, tiny=True, device="cpu", parts="knn,warp_drive", out=str(tmp_path / "gpu.json")))


def _git_repo(path: Path) -> Path:
    path.mkdir()
    (path / "code.py").write_text("print('hi')\n" * 100)
    (path / ".gitignore").write_text("/.gpucarry/\n")
    subprocess.run(["git", "init", "-q"], cwd=path, check=True)
    (path / "untracked.txt").write_bytes(b"x" * 5000)                   # untracked, not ignored: travels too
    return path


def test_pack_builds_the_carry_within_the_limit(tmp_path):
    src = gpu_data.synthetic_source(tmp_path / "source", n_train=300, n_test=50)
    repo = _git_repo(tmp_path / "repo")
    res = gpu_data.build_carry(repo, src, n_audit=100, n_test=20)
    data = repo / gpu_data.CARRY / "data"
    assert sorted(p.name for p in data.iterdir()) == sorted(gpu_data.FILES)
    assert res["carry_bytes"] == gpu_data.folder_bytes(repo / gpu_data.CARRY)
    assert res["tree_bytes"] == len("print('hi')\n" * 100) + 5000 + len("/.gpucarry/\n")
    assert res["total_bytes"] < 64 * 2**20
    z = np.load(data / gpu_data.NPZ)
    assert len(z["train_offsets"]) == 301 and len(z["test_offsets"]) == 21
    src_z = np.load(src / gpu_data.NPZ)
    assert np.array_equal(z["train_jpeg"], src_z["train_jpeg"])            # every training JPEG, unchanged
    idx = np.load(data / gpu_data.AUDIT_IDX)
    assert len(idx) == 100 and np.all(np.diff(idx) > 0)
    emb = np.load(data / gpu_data.AUDIT_EMB)
    assert emb.dtype == np.float16 and np.array_equal(emb, np.load(src / gpu_data.SOURCE_EMB)[idx])
    pack = json.loads((data / gpu_data.PACK).read_text())
    assert pack["n_audit"] == 100 and set(pack["sha256"]) == {gpu_data.NPZ, gpu_data.SOURCE_LABELS, gpu_data.SOURCE_EMB}
    command = (repo / gpu_data.CARRY / "COMMAND.txt").read_text().strip()
    assert command == res["command"] and len(command) <= 2000
    assert "python3 -m curator bench gpu --data .gpucarry/data --out $OUT/gpu.json" in command and "timeout" in command
    with pytest.raises(DataError, match="over the 0 MiB"):
        gpu_data.build_carry(repo, src, n_audit=100, n_test=20, limit=1000)


def test_pack_refuses_a_missing_source(tmp_path):
    with pytest.raises(DataError, match="not found"):
        gpu_data.pack_data(tmp_path, tmp_path / "out")


@pytest.mark.slow
@pytest.mark.skipif(not any(p.is_dir() for p in SHARED), reason="needs the shared CIFAR-10N folder")
def test_real_pack_fits(tmp_path):
    src = next(p for p in SHARED if p.is_dir())
    rec = gpu_data.pack_data(src, tmp_path / "data")
    repo = Path(__file__).resolve().parents[2]
    total = gpu_data.folder_bytes(tmp_path / "data") + gpu_data.tree_bytes(repo)
    assert total < 64 * 2**20, total / 2**20
    assert rec["n_train"] == 50_000 and rec["n_audit"] == 10_000 and rec["n_test"] == 2_000
