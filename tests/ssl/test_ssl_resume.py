"""An interrupted-then-resumed SSL run matches an uninterrupted one (same seed)."""
import pytest
import torch

from curator.ssl.train import pretrain

from ssl_tiny import tiny_cfg, tiny_data


class Killed(Exception):
    pass


@pytest.mark.parametrize("method", ["simsiam", "byol"])
def test_resume_matches_uninterrupted(method, tmp_path):
    torch.set_num_threads(2)
    cfg = tiny_cfg(method=method, epochs=3)
    full = pretrain(tiny_data(), cfg, tmp_path / "full", torch.device("cpu"), seed=0)

    def kill_after_first(epoch, _rec):
        if epoch == 1:
            raise Killed()

    with pytest.raises(Killed):
        pretrain(tiny_data(), cfg, tmp_path / "cut", torch.device("cpu"), seed=0, on_epoch_end=kill_after_first)
    resumed = pretrain(tiny_data(), cfg, tmp_path / "cut", torch.device("cpu"), seed=0)
    assert resumed.resumed_from == 1 and resumed.epochs_done == 3
    a, b = full.method.state_dict(), resumed.method.state_dict()
    for k in a:
        assert torch.allclose(a[k].float(), b[k].float(), atol=1e-6), k
    assert [h["loss"] for h in full.history] == pytest.approx([h["loss"] for h in resumed.history], abs=1e-6)


def test_changed_config_starts_afresh(tmp_path):
    torch.set_num_threads(2)
    pretrain(tiny_data(), tiny_cfg(epochs=1), tmp_path, torch.device("cpu"), seed=0)
    res = pretrain(tiny_data(), tiny_cfg(epochs=1), tmp_path, torch.device("cpu"), seed=5)
    assert res.resumed_from == 0
