"""Library caches (torch hub, Hugging Face) in a temporary folder for the SSL tests, seeded by the tests (`caches` is a
fixture: import it into the test module)."""
import os

import pytest
import torch

SNAPSHOT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def caches(tmp_path, monkeypatch):
    """Empty torch and Hugging Face caches in tmp_path; any download attempt fails the test."""
    import huggingface_hub
    from huggingface_hub import constants

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    attempts = []

    def no_download(*a, **k):
        attempts.append(a)
        raise AssertionError(f"a download was attempted: {a}")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_download)
    yield {"torch": tmp_path / "torch" / "hub" / "checkpoints", "hf": tmp_path / "hf", "attempts": attempts}
    assert torch.hub.get_dir().startswith(str(tmp_path))


def seed_hf(hf: os.PathLike, repo: str, filename: str, state: dict) -> None:
    from safetensors.torch import save_file

    root = os.path.join(hf, "models--" + repo.replace("/", "--"))
    os.makedirs(os.path.join(root, "refs"), exist_ok=True)
    with open(os.path.join(root, "refs", "main"), "w") as f:
        f.write(SNAPSHOT)
    snap = os.path.join(root, "snapshots", SNAPSHOT)
    os.makedirs(snap, exist_ok=True)
    save_file({k: v.contiguous() for k, v in state.items()}, os.path.join(snap, filename))


