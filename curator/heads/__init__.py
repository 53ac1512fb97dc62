"""Robust heads trained on cached embeddings (docs/heads.md): the registry (`curator.heads.registry`) names
every head and trains it with `train_head`; docs/heads.md and docs/gdw_fsr.md describe them."""
