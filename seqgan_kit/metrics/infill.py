"""MaskGAN's evaluation measures (Fedus, Goodfellow & Dai, ICLR 2018): n-gram diversity and in-filling quality.

- :func:`distinct_ngrams`: the paper's "% unique n-grams" of a set of samples. For each order n, pooled over
  all sentences: ``100 * (number of distinct n-grams) / (total number of n-gram occurrences)``. A sentence of
  fewer than n tokens has no n-gram of order n; an order with no n-gram at all scores 0.0.
- In-filling of held-out text (``seqgan-kit eval infill``): a mask ``present [N, T]`` (True = the real token is
  given) is built by :func:`build_present` from a :class:`MaskSpec`; the model's teacher-forced logits give the
  masked NLL (:func:`masked_nll`), its fills the token accuracy (:func:`token_accuracy`) and, through
  :func:`masked_spans`, the hypothesis/reference token lists of the in-fill BLEU (each row's filled tokens at its
  masked positions, in order, against the real tokens there). Every measure reads the masked positions only.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .ngrams import build_table

MASK_STRATEGIES = ("contiguous", "random")
PREFIX = "prefix"
_PREFIX_SPEC = re.compile(r"prefix:(\d+)")


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


# --------------------------------------------------------------------------- masks
@dataclass(frozen=True)
class MaskSpec:
    """Which tokens an in-filling evaluation hides: ``strategy`` is ``contiguous``, ``random`` (both drawn by
    :func:`seqgan_kit.rl.masks.make_present`) or ``prefix`` (the first ``keep`` tokens kept, the rest masked)."""

    strategy: str
    keep: int = 0

    def __str__(self) -> str:
        return f"{PREFIX}:{self.keep}" if self.strategy == PREFIX else self.strategy


def parse_mask(text: str) -> MaskSpec:
    """``"contiguous"``, ``"random"`` or ``"prefix:K"`` (K >= 1) -> MaskSpec; ValueError otherwise."""
    if text in MASK_STRATEGIES:
        return MaskSpec(text)
    match = _PREFIX_SPEC.fullmatch(text)
    if match is None:
        raise ValueError(f"unknown mask {text!r}: expected contiguous, random or prefix:K (K tokens kept)")
    keep = int(match.group(1))
    if keep < 1:
        raise ValueError(f"mask {text!r}: prefix:K keeps K >= 1 tokens (token 0 is always given)")
    return MaskSpec(PREFIX, keep)


def prefix_present(batch: int, seq_len: int, keep: int) -> torch.Tensor:
    """``present [batch, seq_len]`` bool: the first ``keep`` positions True, the rest False."""
    return (torch.arange(seq_len) < keep).unsqueeze(0).expand(batch, seq_len).clone()


def build_present(spec: MaskSpec, batch: int, seq_len: int, rate: float, seed: int) -> torch.Tensor:
    """``present [batch, seq_len]`` bool on the CPU (True = kept), reproducible from ``seed``; token 0 is kept.

    ``rate`` (the fraction kept, ``contiguous``/``random`` only) goes to
    :func:`seqgan_kit.rl.masks.make_present` with a fresh ``torch.Generator().manual_seed(seed)``. The caller
    applies the model's ``keep_structure`` (EOS and padding are never filled) afterwards.
    """
    from ..rl.masks import make_present

    if spec.strategy == PREFIX:
        if not 1 <= spec.keep < seq_len:
            raise ValueError(f"prefix:{spec.keep} needs 1 <= K < {seq_len} (the sequence length)")
        return prefix_present(batch, seq_len, spec.keep)
    return make_present(batch, seq_len, rate, spec.strategy, torch.Generator().manual_seed(seed))


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

