"""Metrics, one module per family: ``nll`` (NLL_oracle, NLL_test), ``bleu`` (BLEU-n, Self-BLEU-n)."""
