"""MaskGAN's evaluation measures (Fedus, Goodfellow & Dai, ICLR 2018): n-gram diversity and in-filling quality.

- :func:`distinct_ngrams`: the paper's "% unique n-grams" of a set of samples. For each order n, pooled over
  all sentences: ``100 * (number of distinct n-grams) / (total number of n-gram occurrences)``. A sentence of
  fewer than n tokens has no n-gram of order n; an order with no n-gram at all scores 0.0.
- In-filling of held-out text (``seqgan-kit eval infill``, :mod:`seqgan_kit.infill`): given a mask
  ``present [N, T]`` (True = the real token is given; :mod:`seqgan_kit.models.masks`), the model's
  teacher-forced logits give the masked NLL (:func:`masked_nll`), its fills the token accuracy
  (:func:`token_accuracy`) and, through :func:`masked_spans`, the hypothesis/reference token lists of the in-fill
  BLEU (each row's filled tokens at its masked positions, in order, against the real tokens there). Every
  measure reads the masked positions only.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import torch
import torch.nn.functional as F

from .ngrams import build_table


# --------------------------------------------------------------------------- diversity
def ngram_counts(sentences: Sequence[Sequence[Hashable]], orders: Sequence[int]) -> dict[int, tuple[int, int]]:
    """``{n: (distinct n-grams, n-gram occurrences)}`` pooled over ``sentences`` (lists of tokens).

    Exact (n-grams get dense integer ids, :func:`seqgan_kit.metrics.ngrams.build_table`); no Python loop over
    sentences or n-grams. Orders must be >= 1.
    """
    orders = sorted(set(orders))
    if not orders:
        return {}
    if orders[0] < 1:
        raise ValueError(f"n-gram orders must be >= 1, got {orders[0]}")
    table, _, ids = build_table(sentences, max(orders))  # ids [max_order, P]: -1 where no n-gram starts
    return {n: (len(table.keys[n - 1]), int((ids[n - 1] >= 0).sum())) for n in orders}


def distinct_ngrams(sentences: Sequence[Sequence[Hashable]], orders: Sequence[int]) -> dict[int, float]:
    """MaskGAN's "% unique n-grams": ``{n: 100 * distinct / total}``, n-grams pooled over all ``sentences``.

    ``sentences``: token lists (a sentence shorter than n adds no n-gram of order n). An order without any
    n-gram scores 0.0. Keys in increasing order.
    """
    return {n: 100.0 * distinct / total if total else 0.0
            for n, (distinct, total) in ngram_counts(sentences, orders).items()}


# --------------------------------------------------------------------------- masked positions
def masked_runs(present: Sequence[bool]) -> list[tuple[int, int]]:
    """The maximal runs of masked (False) positions of one row as ``(start, stop)`` half-open intervals."""
    runs: list[tuple[int, int]] = []
    start = None
    for t, kept in enumerate(present):
        if not kept and start is None:
            start = t
        elif kept and start is not None:
            runs.append((start, t))
            start = None
    if start is not None:
        runs.append((start, len(present)))
    return runs


# --------------------------------------------------------------------------- measures on masked positions
def masked_nll(logits: torch.Tensor, targets: torch.Tensor, present: torch.Tensor) -> tuple[float, int]:
    """Summed cross-entropy at the masked positions and their number: ``(sum_{present=False} -log p(x_t), count)``.

    ``logits [N, T, V]`` (unnormalised; ``-inf`` allowed on tokens other than the target), ``targets [N, T]``
    int64 real tokens, ``present [N, T]`` bool. Sums (not means) so that chunks add up.
    """
    masked = ~present  # [N, T]
    count = int(masked.sum())
    if count == 0:
        return 0.0, 0
    picked = logits[masked]  # [M, V]: only the masked positions are normalised
    total = F.cross_entropy(picked.double(), targets[masked], reduction="sum")
    return float(total), count


def token_accuracy(filled: torch.Tensor, real: torch.Tensor, present: torch.Tensor) -> float:
    """Percentage of masked positions where ``filled [N, T]`` equals ``real [N, T]`` (0.0 if none is masked)."""
    masked = ~present
    count = int(masked.sum())
    return 100.0 * int((masked & (filled == real)).sum()) / count if count else 0.0


def masked_spans(filled: torch.Tensor, real: torch.Tensor, present: torch.Tensor
                 ) -> tuple[list[list[int]], list[list[int]]]:
    """Per row, the tokens at its masked positions in order: ``(hypotheses, references)``, N lists each.

    ``filled``, ``real`` ``[N, T]`` int64, ``present [N, T]`` bool. Row i's hypothesis is ``filled[i][~present[i]]``
    and its reference ``real[i][~present[i]]`` (both empty for a row with nothing masked).
    """
    masked = ~present
    counts = masked.sum(dim=1).tolist()  # [N]
    hyps = torch.split(filled[masked], counts)  # row-major order: row by row, left to right
    refs = torch.split(real[masked], counts)
    return [h.tolist() for h in hyps], [r.tolist() for r in refs]

