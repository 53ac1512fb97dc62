"""Two-process DistributedDataParallel run on the CPU (gloo): finite loss, gathered embeddings."""
import os
import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out: str) -> None:
    import sys

    sys.path.insert(0, os.path.dirname(__file__))
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from curator.ssl.distributed import dist_info
    from curator.ssl.embed import embed_rows
    from curator.ssl.train import pretrain
    from ssl_tiny import tiny_cfg, tiny_data

    info = dist_info(torch.device("cpu"))
    data = tiny_data(101)   # odd on purpose: uneven embedding shards
    res = pretrain(data, tiny_cfg(epochs=2), os.path.join(out, "ck"), torch.device("cpu"), seed=0, info=info)
    emb = embed_rows(res.method.backbone, data.batches, data.n, res.recipe, 8, torch.device("cpu"), info=info)
    np.save(os.path.join(out, f"emb{rank}.npy"), emb)
    np.save(os.path.join(out, f"loss{rank}.npy"), np.array([h["loss"] for h in res.history]))
    torch.distributed.barrier()   # both ranks done before either tears gloo down (else ~1 run in 6 aborted in teardown)
    torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_gloo_two_processes(tmp_path):
    mp.start_processes(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True, start_method="spawn")
    e0, e1 = np.load(tmp_path / "emb0.npy"), np.load(tmp_path / "emb1.npy")
    assert e0.shape == (101, 16) and e0.dtype == np.float16
    assert np.array_equal(e0, e1)                      # every rank holds the gathered array
    assert np.isfinite(np.load(tmp_path / "loss0.npy")).all()
    assert np.abs(e0).sum(1).min() > 0                 # every row was written by some rank
    assert (tmp_path / "ck" / "last.pt").exists()      # rank 0 wrote the checkpoint
