"""kNN monitor accuracy, the proxy of representation quality used by SimSiam and paper 000 (§3.3,
fig. 6b): weighted k-nearest-neighbour vote of L2-normalised features, k = 200, cosine similarity,
weights exp(sim / T) with T = 0.1 (Wu et al. 2018, InstDisc).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


@torch.no_grad()
def knn_predict(query: torch.Tensor, bank: torch.Tensor, bank_labels: torch.Tensor, n_classes: int,
                k: int = 200, temperature: float = 0.1, chunk: int = 1024) -> torch.Tensor:
    """Predict labels of `query` (Q, d) from `bank` (N, d) with labels (N,) -> (Q,) int64.

    Features need not be normalised (they are normalised here). Work is chunked over queries so that
    only a (chunk, N) similarity block is alive at a time.
    """
    query = F.normalize(query.float(), dim=1)
    bank = F.normalize(bank.float(), dim=1)
    k = min(k, bank.shape[0])
    preds = []
    for start in range(0, query.shape[0], chunk):
        sim = query[start:start + chunk] @ bank.T                    # (q, N)
        top_sim, top_idx = sim.topk(k, dim=1)                        # (q, k)
        top_lab = bank_labels[top_idx]                               # (q, k)
        w = (top_sim / temperature).exp()
        votes = torch.zeros(sim.shape[0], n_classes, device=sim.device)
        votes.scatter_add_(1, top_lab, w)                            # (q, C)
        preds.append(votes.argmax(1))
    return torch.cat(preds) if preds else torch.zeros(0, dtype=torch.long, device=query.device)


def knn_accuracy(query: torch.Tensor, query_labels: torch.Tensor, bank: torch.Tensor, bank_labels: torch.Tensor,
                 n_classes: int, k: int = 200, temperature: float = 0.1) -> float:
    """Share of queries whose kNN vote equals their label."""
    if query.shape[0] == 0:
        return float("nan")
    pred = knn_predict(query, bank, bank_labels, n_classes, k, temperature)
    return float((pred == query_labels).float().mean().item())
