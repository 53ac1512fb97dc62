"""Robust heads trained on cached embeddings (SPEC §5): the registry (`curator.heads.registry`) names
every head and trains it with `train_head`; docs/heads.md and docs/gdw_fsr.md describe them."""
