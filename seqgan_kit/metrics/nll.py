"""Likelihood metrics of the synthetic experiment.

- NLL_oracle (SeqGAN's main metric): sample sequences from the generator, score them with the oracle,
  report the mean per-token negative log-likelihood in nats. Lower is better; the oracle's own samples
  reach the floor (about 5.75 for the reference oracle).
- NLL_test: the generator's mean per-token NLL on held-out sequences (e.g. fresh oracle samples).
- NLL_gen (RelGAN's name): the same mean on the *training* sequences, every position counted for a fixed-length
  model (RelGAN: the MLE loss summed over a batch and divided by T * B, averaged over the training batches).

``through`` (fixed-length PAD text): count each row only up to and including its first ``through`` token (the PAD
that ends the sentence, as EOS does in ``eos`` text), leaving out the padding after it.
"""

from __future__ import annotations

import torch

from ..models.generator import SequenceGenerator


@torch.no_grad()
def sequence_nll(model: SequenceGenerator, seqs: torch.Tensor, batch_size: int = 256) -> float:
    """Mean per-token NLL (nats) of ``seqs [N, T]`` under ``model``, computed in batches.

    The mean is over the tokens of the sequences: for a variable-length model the padding after EOS is left
    out (EOS itself counts), so a padded batch scores exactly like its unpadded sequences.
    """
    if seqs.numel() == 0:
        raise ValueError("no sequences to score")
    total, count = sequence_nll_sum(model, seqs, batch_size)
    return total / max(count, 1)


def through_first(seqs: torch.Tensor, token: int) -> torch.Tensor:
    """``[B, T]`` ids -> ``[B, T]`` bool: the positions up to and including each row's first ``token`` (the whole
    row when it has none)."""
    hit = (seqs == token).long()
    return (hit.cumsum(dim=1) - hit) == 0


@torch.no_grad()
def sequence_nll_sum(model: SequenceGenerator, seqs: torch.Tensor, batch_size: int = 256,
                     through: int | None = None) -> tuple[float, int]:
    """``(summed NLL in nats, tokens counted)`` of ``seqs [N, T]`` (N may be 0): the parts of
    :func:`sequence_nll`, which several ranks add up before dividing. ``through``: count each row only up to and
    including its first ``through`` token (see the module docstring)."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for lo in range(0, seqs.shape[0], batch_size):
        chunk = seqs[lo : lo + batch_size].to(model.device)  # [b, T]
        lp = model.log_probs(chunk).double()  # [b, T]; padding positions of an EOS model hold 0
        keep = model.token_mask(chunk)
        if through is not None:
            keep = keep & through_first(chunk, through)
        total += -(lp * keep).sum().item()
        count += int(keep.sum())
    model.train(was_training)
    return total, count


@torch.no_grad()
def nll_oracle(
    generator: SequenceGenerator,
    oracle: SequenceGenerator,
    n_samples: int = 9984,
    batch_size: int = 256,
    rng: torch.Generator | None = None,
) -> float:
    """Sample ``n_samples`` sequences from ``generator`` (temperature 1) and return the oracle's mean NLL."""
    total, count = nll_oracle_sum(generator, oracle, n_samples, batch_size, rng)
    return total / max(count, 1)


def nll_oracle_sum(
    generator: SequenceGenerator,
    oracle: SequenceGenerator,
    n_samples: int,
    batch_size: int = 256,
    rng: torch.Generator | None = None,
) -> tuple[float, int]:
    """The parts ``(summed NLL, tokens)`` of :func:`nll_oracle` for ``n_samples`` (>= 0) fresh samples."""
    if n_samples == 0:
        return 0.0, 0
    was_training = generator.training
    generator.eval()
    samples = generator.sample(n_samples, generator=rng, batch_size=batch_size)
    generator.train(was_training)
    return sequence_nll_sum(oracle, samples, batch_size)


def nll_test(generator: SequenceGenerator, test_seqs: torch.Tensor, batch_size: int = 256) -> float:
    """The generator's mean per-token NLL on held-out sequences ``test_seqs [N, T]``."""
    return sequence_nll(generator, test_seqs, batch_size)
