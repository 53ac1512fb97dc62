import logging

import torch

from curator.ssl.train import _warn_if_long


def test_long_cpu_pretraining_warns_with_an_estimate_and_a_way_out(caplog):
    with caplog.at_level(logging.WARNING, logger="curator.ssl.train"):
        _warn_if_long(70.0, 199, torch.device("cpu"), None)
    assert len(caplog.records) == 1
    msg = caplog.records[0].getMessage()
    assert "3.9 h left" in msg and "--embeddings" in msg


def test_short_or_capped_runs_stay_quiet(caplog):
    with caplog.at_level(logging.WARNING, logger="curator.ssl.train"):
        _warn_if_long(0.05, 199, torch.device("cpu"), None)       # digits: seconds in total
        _warn_if_long(70.0, 199, torch.device("cpu"), 5.0)        # capped at 5 minutes
    assert not caplog.records
