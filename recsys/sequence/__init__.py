"""Parts of the sequential/next-item model that stand on their own (``recsys.seqmodel`` holds
the network, inference and training loop and imports these)."""
