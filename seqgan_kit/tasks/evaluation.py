"""The ``[eval]`` table: how a task evaluates a generator during training."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import ConfigError, positive


@dataclass
class EvalConfig:
    """How NLL_oracle / NLL_test and the text metrics are computed."""

    n_samples: int = 9984
    """Generator samples scored by the oracle for NLL_oracle (the original: 9,984)."""
    batch_size: int = 256
    """Rows per sampling/scoring chunk (small chunks keep the [rows, T, V] logits cache-friendly)."""
    bleu_samples: int = 500
    """Text task: generated samples scored with BLEU against the test split at every evaluation (0: none)."""
    bleu_references: int = 2000
    """Text task: test examples used as BLEU references during training (0: all)."""
    test_rows: int = 0
    """Text task: test examples scored for NLL_test at every evaluation, the first ones of the test split (0: all).
    For models whose scoring is slow (LeakGAN reads its discriminator at every token); an NLL_test on a part is
    comparable only with one on the same part."""
    nll_gen: bool = False
    """Also log ``nll_gen``, RelGAN's NLL_gen: the generator's NLL on the *training* data with RelGAN's
    normalisation (every position of a fixed-length sequence, PADs included), beside ``nll_test`` (held-out,
    padding excluded). One more pass over the training set per evaluation; the Gumbel recipes turn it on."""

    def validate(self) -> None:
        positive(self, "n_samples", "batch_size")
        if self.bleu_samples == 1 or self.bleu_samples < 0:
            raise ConfigError("bleu_samples", f"0 (off) or at least 2 (Self-BLEU needs two samples), got "
                                              f"{self.bleu_samples}")
        for name in ("bleu_references", "test_rows"):
            if getattr(self, name) < 0:
                raise ConfigError(name, f"must be >= 0 (0 = all), got {getattr(self, name)}")
