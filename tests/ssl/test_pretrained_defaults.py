"""Defaults that follow the field (issue 20 item 2): a CPU image audit starts from a pretrained backbone found in the
library cache before the budget ladder (patch k-means), and says which and why; the Clothing1M recipe starts from an
ImageNet-pretrained ResNet-50 when its weights are cached, and otherwise names the command that fetches them. Nothing
is ever downloaded for a default (the `caches` fixture fails the test on any download attempt)."""
import json
import logging

import numpy as np
import torch
import torchvision
from PIL import Image

from curator.cli import main
from curator.data.options import DatasetOptions
from curator.data.registry import load_dataset
from curator.ssl.resolve import resolve_config
from pipelines.recipes import load_recipe

from lib_caches import caches  # noqa: F401 - a fixture

CPU = torch.device("cpu")


def _folder(root, n=6, size=32):
    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        (root / cls).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (size, size, 3), np.uint8)).save(root / cls / f"{i}.png")
    return root


def test_cpu_image_folder_uses_a_cached_pretrained_backbone_and_says_why(caches, tmp_path, caplog, capsys, monkeypatch):
    root = _folder(tmp_path / "imgs")
    ds = load_dataset(DatasetOptions(dataset="imagefolder", root=str(root)))
    with caplog.at_level(logging.INFO):
        plain = resolve_config(ds, load_recipe("imagefolder").ssl, CPU)
    assert plain.backbone is None and plain.budget_minutes == 5.0      # nothing cached: the budget ladder, as before
    assert "no pretrained start in the library caches" in caplog.text

    caches["torch"].mkdir(parents=True)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), caches["torch"] / "resnet18-f37072fd.pth")
    monkeypatch.setenv("CURATOR_DEVICE", "cpu")
    capsys.readouterr()
    assert main(["embed", "--dataset", "imagefolder", "--root", str(root), "--out", str(tmp_path / "run")]) == 0
    assert "representation: torchvision:resnet18 with --weights imagenet as they are, because its weights " \
           "ResNet18_Weights.IMAGENET1K_V1 are in the torchvision cache" in capsys.readouterr().err
    rep = json.loads((tmp_path / "run" / "provenance.json").read_text())["representation"]
    assert rep["backbone"] == "torchvision:resnet18" and rep["image_size"] == 224     # the model's own input size
    assert rep["weights_source"] == "library cache"
    assert np.load(tmp_path / "run" / "embeddings.npy").shape == (12, 512)
    assert caches["attempts"] == []


def test_clothing1m_recipe_starts_from_a_cached_imagenet_resnet50(caches, tmp_path, caplog):
    cfg = load_recipe("clothing1m").ssl
    assert cfg.cached_starts == ["torchvision:resnet50=imagenet"]
    ds = load_dataset(DatasetOptions(dataset="imagefolder", root=str(_folder(tmp_path / "imgs", n=2))))
    with caplog.at_level(logging.WARNING):
        fallback = resolve_config(ds, cfg, CPU)
    assert fallback.backbone is None and fallback.budget_minutes == 5.0            # today's behaviour
    warning = caplog.text
    assert "resnet50-11ad3fa6.pth" in warning and str(caches["torch"]) in warning
    assert "--backbone torchvision:resnet50 --weights imagenet" in warning

    caches["torch"].mkdir(parents=True)
    (caches["torch"] / "resnet50-11ad3fa6.pth").write_bytes(b"")   # resolution only looks it up; loading is tested apart
    start = resolve_config(ds, cfg, CPU)
    assert (start.backbone, start.weights, start.epochs, start.image_size) == \
        ("torchvision:resnet50", "imagenet", 0, 128)                                # the recipe's resolution is kept
    # asked for something else, the recipe's start steps aside
    assert resolve_config(ds, cfg.replace(backbone="small_cnn", epochs=1), CPU).backbone == "small_cnn"
    assert caches["attempts"] == []


def test_runs_sharing_a_cache_embed_once_per_model_and_weights(caches, tmp_path, capsys, monkeypatch):
    root = _folder(tmp_path / "imgs", n=3)
    caches["torch"].mkdir(parents=True)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), caches["torch"] / "resnet18-f37072fd.pth")
    monkeypatch.setenv("CURATOR_CACHE", str(tmp_path / "shared"))
    base = ["embed", "--dataset", "imagefolder", "--root", str(root), "--device", "cpu",
            "--backbone", "torchvision:resnet18", "--set", "ssl.image_size=32"]
    assert main([*base, "--weights", "imagenet", "--out", str(tmp_path / "a")]) == 0
    capsys.readouterr()
    assert main([*base, "--weights", "IMAGENET1K_V1", "--out", str(tmp_path / "b")]) == 0   # the same weights
    assert "embeddings: reusing" in capsys.readouterr().err
    assert np.array_equal(np.load(tmp_path / "a" / "embeddings.npy"), np.load(tmp_path / "b" / "embeddings.npy"))
    other = tmp_path / "other.pt"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), other)             # other weights: embedded
    assert main([*base, "--weights", str(other), "--out", str(tmp_path / "c")]) == 0
    assert "embeddings: reusing" not in capsys.readouterr().err
    assert len(list((tmp_path / "shared").glob("embeddings-*.npy"))) == 2
