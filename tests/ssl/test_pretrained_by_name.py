"""Pretrained weights by name (issue 20): --backbone torchvision:NAME --weights imagenet, timm:NAME --weights pretrained,
openclip:ARCH --weights TAG, read from the library's own cache.

Every cache is seeded by the test (a state dict written under the file name the library expects, in a temporary
TORCH_HOME / Hugging Face cache); no test touches the network: the download functions are replaced by ones that fail
the test, except where a failed download (offline) is the case under test."""
import json
import os

import numpy as np
import pytest
import torch
import torchvision

from curator.ssl import pretrained
from curator.ssl.weights import WeightsError

from lib_caches import caches, seed_hf  # noqa: F401 - caches is a fixture
from ssl_tiny import EMBED_N as N
from ssl_tiny import assert_close_embeddings as _close, embed_digits as _embed, reference_embeddings as _reference

torch.set_num_threads(2)


def test_torchvision_imagenet_from_a_seeded_torch_cache(caches, tmp_path, capsys):
    torch.manual_seed(3)
    model = torchvision.models.resnet18(weights=None)
    caches["torch"].mkdir(parents=True)
    torch.save(model.state_dict(), caches["torch"] / "resnet18-f37072fd.pth")   # torchvision's file name for V1
    assert _embed(tmp_path / "run", "--backbone", "torchvision:resnet18", "--weights", "imagenet",
                  "--set", "ssl.image_size=32") == 0
    model.fc = torch.nn.Identity()
    t = torchvision.models.ResNet18_Weights.DEFAULT.transforms()
    _close(np.load(tmp_path / "run" / "embeddings.npy"), _reference(model, 32, t.mean, t.std))
    prov = json.loads((tmp_path / "run" / "provenance.json").read_text())["representation"]
    assert prov["weights"] == "imagenet" and prov["weights_named"] == "ResNet18_Weights.IMAGENET1K_V1"
    assert prov["weights_source"] == "library cache" and prov["weights_file"].endswith("resnet18-f37072fd.pth")
    # the embeddings are kept per model + weights: the same command does no work, other weights embed again
    capsys.readouterr()
    assert _embed(tmp_path / "run", "--backbone", "torchvision:resnet18", "--weights", "IMAGENET1K_V1",
                  "--set", "ssl.image_size=32") == 0
    assert "stage embed: up to date" in capsys.readouterr().err
    assert caches["attempts"] == []


def test_member_names_and_the_models_own_input_size(caches):
    from curator.data import DatasetOptions
    from curator.data.registry import load_dataset
    from curator.ssl.resolve import resolve_config

    named = pretrained.resolve("torchvision:resnet50", "IMAGENET1K_V2")
    assert named.tag == "ResNet50_Weights.IMAGENET1K_V2" and named.folder == str(caches["torch"])
    assert pretrained.resolve("torchvision:resnet50", "imagenet").tag == "ResNet50_Weights.IMAGENET1K_V2"  # DEFAULT
    with pytest.raises(WeightsError, match="IMAGENET1K_V1"):
        pretrained.resolve("torchvision:resnet18", "imagenet21k")
    with pytest.raises(WeightsError, match="builder rewrites"):   # never loaded half right
        pretrained.resolve("torchvision:inception_v3", "imagenet")
    ds = load_dataset(DatasetOptions(limit=16))
    cfg = resolve_config(ds, {"backbone": "torchvision:vit_b_16", "weights": "imagenet"}, torch.device("cpu"))
    assert cfg.image_size == 224 and cfg.epochs == 0      # its own input size; as they are


def test_timm_pretrained_from_a_seeded_hf_cache(caches, tmp_path):
    timm = pytest.importorskip("timm")
    torch.manual_seed(4)
    model = timm.create_model("resnet10t", pretrained=False)
    repo = model.pretrained_cfg["hf_hub_id"]
    seed_hf(caches["hf"], repo, "model.safetensors", model.state_dict())
    assert _embed(tmp_path / "run", "--backbone", "timm:resnet10t", "--weights", "pretrained",
                  "--set", "ssl.image_size=32") == 0
    cfg = model.pretrained_cfg
    model.reset_classifier(0)
    _close(np.load(tmp_path / "run" / "embeddings.npy"), _reference(model, 32, cfg["mean"], cfg["std"]))
    assert caches["attempts"] == []


def test_openclip_image_tower_from_a_seeded_hf_cache(caches, tmp_path, monkeypatch):
    open_clip = pytest.importorskip("open_clip")
    from open_clip import factory, pretrained as oc_pretrained

    # a tiny CLIP registered for the test, with a pretrained tag on a (seeded, fake) hub repository
    cfg = {"embed_dim": 16, "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
           "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 16, "heads": 2, "layers": 1}}
    monkeypatch.setitem(factory._MODEL_CONFIGS, "tiny-test", cfg)
    mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
    monkeypatch.setitem(oc_pretrained._PRETRAINED, "tiny-test",
                        {"t1": {"url": "", "hf_hub": "test/tiny-clip/", "mean": mean, "std": std}})
    torch.manual_seed(5)
    model = open_clip.create_model("tiny-test", pretrained=None)
    seed_hf(caches["hf"], "test/tiny-clip", "open_clip_model.safetensors", model.state_dict())
    assert _embed(tmp_path / "run", "--backbone", "openclip:tiny-test", "--weights", "t1") == 0
    emb = np.load(tmp_path / "run" / "embeddings.npy")
    _close(emb, _reference(model.visual, 32, mean, std))      # image tower, the tag's own normalisation, 32 px
    assert emb.shape == (N, 16) and caches["attempts"] == []


def test_named_weights_are_fetched_once_into_the_cache_with_the_librarys_check(caches, tmp_path, monkeypatch):
    state = torchvision.models.resnet18(weights=None).state_dict()
    calls = []

    def connected(url, dst, hash_prefix=None, progress=True):   # stands in for the network: writes what it would fetch
        calls.append((url, dst, hash_prefix, progress))
        torch.save(state, dst)

    monkeypatch.setattr(torch.hub, "download_url_to_file", connected)
    args = ["--backbone", "torchvision:resnet18", "--weights", "imagenet", "--set", "ssl.image_size=32"]
    assert _embed(tmp_path / "run", *args) == 0
    assert _embed(tmp_path / "again", *args) == 0          # the second run finds it in the cache
    url, dst, prefix, progress = calls[0]
    assert len(calls) == 1 and url == torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url
    assert dst == str(caches["torch"] / "resnet18-f37072fd.pth") and prefix == "f37072fd" and progress


@pytest.mark.parametrize("library", ["torchvision", "timm"])
def test_offline_and_absent_is_one_line_and_no_run(caches, tmp_path, capsys, monkeypatch, library):
    import urllib.error

    import huggingface_hub

    tried = []

    def offline(*a, **k):
        tried.append(a)
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    if library == "timm":
        pytest.importorskip("timm")
        args, expect = ["--backbone", "timm:resnet10t", "--weights", "pretrained"], "model.safetensors"
    else:
        args, expect = ["--backbone", "torchvision:resnet18", "--weights", "imagenet"], "resnet18-f37072fd.pth"
    capsys.readouterr()
    code = _embed(tmp_path / "run", *args)
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    errors = [ln for ln in err.splitlines() if " ERROR " in ln]
    assert len(errors) == 1, err
    folder = str(caches["torch"]) if library == "torchvision" else str(caches["hf"])
    assert expect in errors[0] and folder in errors[0] and args[1] in errors[0], errors[0]
    assert tried and not (tmp_path / "run").exists()           # it tried (named weights), wrote no run


def test_a_file_of_that_name_wins_and_the_log_says_so(caches, tmp_path, capsys, monkeypatch):
    model = torchvision.models.resnet18(weights=None)
    monkeypatch.chdir(tmp_path)
    torch.save(model.state_dict(), tmp_path / "imagenet")
    capsys.readouterr()
    assert _embed(tmp_path / "run", "--backbone", "torchvision:resnet18", "--weights", "imagenet",
                  "--set", "ssl.image_size=32") == 0
    assert "--weights imagenet: the file of that name is used" in capsys.readouterr().err
    prov = json.loads((tmp_path / "run" / "provenance.json").read_text())["representation"]
    assert prov["weights_source"] == "file" and caches["attempts"] == []


class Boom:
    def __reduce__(self):
        return (os.system, ("touch EXECUTED",))


@pytest.mark.parametrize("case", ["missing", "truncated", "fifo", "directory", "code", "cache_truncated"])
def test_bad_weights_one_line_exit_2_nothing_executed(caches, tmp_path, capsys, monkeypatch, case):
    monkeypatch.chdir(tmp_path)
    f = tmp_path / "w.pt"
    weights = str(f)
    if case == "truncated":
        torch.save(torchvision.models.resnet18(weights=None).state_dict(), f)
        f.write_bytes(f.read_bytes()[:5000])
    elif case == "fifo":
        os.mkfifo(f)
    elif case == "directory":
        f.mkdir()
    elif case == "code":
        import pickle

        f.write_bytes(pickle.dumps({"fc.weight": Boom()}))
    elif case == "cache_truncated":   # a damaged file in the library cache
        caches["torch"].mkdir(parents=True)
        (caches["torch"] / "resnet18-f37072fd.pth").write_bytes(b"PK\x03\x04 not a whole zip")
        weights, f = "imagenet", caches["torch"] / "resnet18-f37072fd.pth"
    capsys.readouterr()
    code = _embed(tmp_path / "run", "--backbone", "torchvision:resnet18", "--weights", weights)
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    errors = [ln for ln in err.splitlines() if " ERROR " in ln]
    assert len(errors) == 1 and str(f) in errors[0], err
    assert not (tmp_path / "EXECUTED").exists() and not (tmp_path / "run").exists()
    assert caches["attempts"] == []


def test_self_supervised_training_continues_from_named_weights(caches, tmp_path):
    caches["torch"].mkdir(parents=True)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), caches["torch"] / "resnet18-f37072fd.pth")
    assert _embed(tmp_path / "run", "--backbone", "torchvision:resnet18", "--weights", "imagenet", "--epochs", "1",
                  "--batch-size", "12", "--set", "ssl.image_size=32", "--set", "ssl.knn_every=0") == 0
    hist = json.loads((tmp_path / "run" / "checkpoints" / "history.json").read_text())
    assert hist["epochs_done"] == 1 and hist["weights"] == "imagenet" and caches["attempts"] == []
