"""A local pretrained start: --backbone torchvision:NAME|timm:NAME --weights FILE, and a curator checkpoint.

The weights are made by the test (a model built without weights, its state dict saved); nothing is downloaded.
Embedding "as is" (no --epochs / --budget) must give exactly the features of the model the file came from;
a file that does not fit fails with exit code 2 and one line naming the file and the keys."""
import numpy as np
import pytest
import torch
import torchvision

from curator.ssl.augment import IMAGENET_MEAN, IMAGENET_STD
from curator.ssl.weights import WeightsError, read_weights
from ssl_tiny import assert_close_embeddings as _close, embed_digits as _embed, reference_embeddings as _reference

torch.set_num_threads(2)

def test_torchvision_state_dict_embeds_like_its_model(tmp_path):
    model = torchvision.models.resnet18(weights=None)
    torch.save(model.state_dict(), tmp_path / "r18.pt")
    assert _embed(tmp_path / "run", "--backbone", "torchvision:resnet18", "--weights", str(tmp_path / "r18.pt"),
                  "--set", "ssl.image_size=32") == 0
    emb = np.load(tmp_path / "run" / "embeddings.npy")
    model.fc = torch.nn.Identity()
    _close(emb, _reference(model, 32, IMAGENET_MEAN, IMAGENET_STD))     # torchvision's own normalisation
    hist = (tmp_path / "run" / "checkpoints" / "history.json").read_text()
    assert '"epochs": 0' in hist and "as they are" in hist


def test_timm_state_dict_embeds_like_its_model(tmp_path):
    timm = pytest.importorskip("timm")
    model = timm.create_model("resnet10t", pretrained=False)
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, tmp_path / "t.pth")
    assert _embed(tmp_path / "run", "--backbone", "timm:resnet10t", "--weights", str(tmp_path / "t.pth"),
                  "--set", "ssl.image_size=32") == 0                       # wrapped + DDP prefix: still found
    emb = np.load(tmp_path / "run" / "embeddings.npy")
    cfg = model.pretrained_cfg
    model.reset_classifier(0)
    _close(emb, _reference(model, 32, cfg["mean"], cfg["std"]))


def test_curator_checkpoint_of_an_earlier_run(tmp_path):
    first = tmp_path / "first"
    assert _embed(first, "--epochs", "2") == 0
    # the run directory (or its checkpoints/backbone.pt) is a starting point: as is, it embeds identically
    assert _embed(tmp_path / "again", "--weights", str(first)) == 0
    assert np.array_equal(np.load(first / "embeddings.npy"), np.load(tmp_path / "again" / "embeddings.npy"))
    # ... and self-supervised training can continue from it
    assert _embed(tmp_path / "more", "--weights", str(first / "checkpoints" / "backbone.pt"), "--epochs", "1") == 0
    assert not np.array_equal(np.load(first / "embeddings.npy"), np.load(tmp_path / "more" / "embeddings.npy"))


class NotTensors:
    pass


@pytest.mark.parametrize("case", ["missing", "mismatch", "not_state_dict", "refused_pickle", "other_backbone"])
def test_bad_weights_fail_with_one_clear_line(tmp_path, capsys, case):
    f = tmp_path / "w.pt"
    if case == "mismatch":       # resnet18 weights for a resnet34: layers it lacks are missing
        torch.save(torchvision.models.resnet18(weights=None).state_dict(), f)
        args = ["--backbone", "torchvision:resnet34"]
    elif case == "not_state_dict":
        torch.save({"epoch": 3, "note": "not weights"}, f)
        args = ["--backbone", "torchvision:resnet18"]
    elif case == "refused_pickle":
        torch.save({"model": NotTensors()}, f)
        args = ["--backbone", "torchvision:resnet18"]
    elif case == "other_backbone":
        assert _embed(tmp_path / "first", "--epochs", "1") == 0
        f = tmp_path / "first" / "checkpoints" / "backbone.pt"
        args = ["--backbone", "torchvision:resnet18"]
    else:
        args = ["--backbone", "torchvision:resnet18"]
    capsys.readouterr()
    code = _embed(tmp_path / "run", *args, "--weights", str(f), "--set", "ssl.image_size=32")
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    errors = [line for line in err.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and str(f) in errors[0], err
    msg = errors[0]
    expect = {"missing": "does not exist", "mismatch": "missing key(s): layer1.2.",
              "not_state_dict": "is not a state dict", "refused_pickle": "weights_only=True",
              "other_backbone": "curator checkpoint of backbone 'tiny_cnn'"}[case]
    assert expect in msg, msg
    assert not (tmp_path / "run").exists()     # checked before the run directory is written


def test_shape_mismatch_names_the_keys(tmp_path):
    model = torchvision.models.resnet18(weights=None)
    state = model.state_dict()
    state["conv1.weight"] = torch.zeros(64, 3, 3, 3)
    state["extra.bias"] = torch.zeros(2)
    torch.save(state, tmp_path / "w.pt")
    from curator.ssl.backbones import build_backbone

    with pytest.raises(WeightsError) as err:
        build_backbone("torchvision:resnet18", 32, weights=str(tmp_path / "w.pt"))
    assert "unexpected key(s): extra.bias" in str(err.value) and "conv1.weight: file (64, 3, 3, 3)" in str(err.value)


def test_read_weights_accepts_safetensors(tmp_path):
    st = pytest.importorskip("safetensors.torch")
    state = torchvision.models.resnet18(weights=None).state_dict()
    st.save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "m.safetensors"))
    got, meta = read_weights(tmp_path / "m.safetensors")
    assert meta is None and set(got) == set(state)
