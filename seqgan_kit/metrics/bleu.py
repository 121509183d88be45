"""BLEU-n and Self-BLEU-n as text-GAN papers compute them, exactly and fast.

The protocol (SeqGAN, Texygen and their successors): every generated sentence is scored with
``nltk.translate.bleu_score.sentence_bleu(references, hypothesis, weights=(1/n,)*n,
smoothing_function=SmoothingFunction().method1)`` against *all* reference sentences, and the scores are
averaged. Self-BLEU scores each generated sentence against all the other generated sentences (leave one out).

This module returns the same per-sentence numbers as nltk (bit for bit in our tests, against nltk 3.10.4)
thousands of times faster: the reference side is indexed once (exact integer n-gram ids, the largest count
of each n-gram in any one reference, the sorted reference lengths), and each hypothesis is then scored in
compiled code (numba). nltk is not imported here; tests use it as the reference.

Sentences are sequences of hashable tokens (``str`` or ``int``); tokenization is the caller's choice
(see :mod:`seqgan_kit.metrics.text`).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence

import numpy as np

from . import _bleu_kernels as kernels
from .ngrams import MAX_ORDER, Encoded, build_table, lookup

Sentences = Sequence[Sequence[Hashable]]
# One order: the mean (float) or per-sentence scores (float64 [N]); several orders: a dict keyed by order.
Scores = float | np.ndarray | dict[int, float] | dict[int, np.ndarray]

__all__ = ["BleuReferences", "bleu", "self_bleu", "MAX_ORDER"]


def _check_orders(orders: Iterable[int]) -> tuple[int, ...]:
    orders = tuple(orders)
    if not orders:
        raise ValueError("no BLEU orders given")
    for n in orders:
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or not 1 <= n <= MAX_ORDER:
            raise ValueError(f"BLEU order must be an integer in 1..{MAX_ORDER}, got {n!r}")
    return tuple(int(n) for n in orders)


def _length_multiset(enc: Encoded) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct sentence lengths and how many sentences have each."""
    lengths, counts = np.unique(enc.lengths, return_counts=True)
    return lengths.astype(np.int64), counts.astype(np.int64)


def _results(scores: np.ndarray, orders: tuple[int, ...], per_sentence: bool) -> dict:
    """``scores [N, len(orders)]`` -> {order: per-sentence array}, or {order: mean} (fsum / N)."""
    if per_sentence:
        return {n: scores[:, i].copy() for i, n in enumerate(orders)}
    return {n: math.fsum(scores[:, i].tolist()) / scores.shape[0] for i, n in enumerate(orders)}


class BleuReferences:
    """A reference set indexed once, to score any number of hypothesis sets against it.

    ``references``: the reference sentences (each a sequence of tokens); every hypothesis is scored against
    all of them. ``max_order``: the highest BLEU order that :meth:`score` will be asked for (1..9).
    """

    def __init__(self, references: Sentences, max_order: int = 5) -> None:
        (self.max_order,) = _check_orders([max_order])
        if len(references) == 0:
            raise ValueError("no reference sentences")
        self.table, enc, ids = build_table(references, self.max_order)
        self.max_counts = kernels.reference_max_counts(ids, enc.offsets, self.table.n_ids)
        self.lengths, self.length_counts = _length_multiset(enc)

    def score(self, hypotheses: Sentences, orders: Iterable[int] = (2, 3, 4, 5),
              per_sentence: bool = False) -> dict[int, float] | dict[int, np.ndarray]:
        """BLEU-n of ``hypotheses`` for each n in ``orders`` (each at most ``max_order``).

        Returns ``{n: mean over hypotheses}``, or with ``per_sentence`` ``{n: float64 array
        [len(hypotheses)]}`` holding each hypothesis's ``sentence_bleu``.
        """
        orders = _check_orders(orders)
        if max(orders) > self.max_order:
            raise ValueError(f"order {max(orders)} asked, but the references were indexed up to "
                             f"{self.max_order}")
        if len(hypotheses) == 0:
            raise ValueError("no hypotheses to score")
        enc, ids = lookup(self.table, hypotheses, max(orders))
        unused = np.zeros(0, dtype=np.int32)
        scores = kernels.sentence_scores(ids, enc.offsets, self.lengths, self.length_counts, self.max_counts,
                                         unused, unused, np.array(orders, dtype=np.int64), False)
        return _results(scores, orders, per_sentence)


def _one_or_many(n: int | None, orders: Iterable[int] | None) -> tuple[tuple[int, ...], bool]:
    if (n is None) == (orders is None):
        raise ValueError("give exactly one of n (one order) or orders (several)")
    return (_check_orders([n]), True) if orders is None else (_check_orders(orders), False)


def bleu(hypotheses: Sentences, references: Sentences, n: int | None = None, *,
         orders: Iterable[int] | None = None, per_sentence: bool = False) -> Scores:
    """BLEU-n of every hypothesis against all ``references``, averaged (the text-GAN protocol).

    Each hypothesis's score equals ``sentence_bleu(references, hyp, weights=(1/n,)*n,
    smoothing_function=SmoothingFunction().method1)`` from nltk. Give ``n`` for one order (returns a float,
    or a float64 array ``[len(hypotheses)]`` of per-sentence scores with ``per_sentence``) or ``orders``
    (e.g. ``(2, 3, 4, 5)``: returns ``{n: mean}`` or ``{n: array}``), computed in one pass.
    The mean is the exactly rounded sum (``math.fsum``) divided by the number of hypotheses.
    """
    orders_, single = _one_or_many(n, orders)
    result = BleuReferences(references, max(orders_)).score(hypotheses, orders_, per_sentence)
    return result[orders_[0]] if single else result


def self_bleu(samples: Sentences, n: int | None = None, *, orders: Iterable[int] | None = None,
              per_sentence: bool = False) -> Scores:
    """Self-BLEU-n: each sample scored against all the *other* samples (leave one out), averaged.

    Sample ``i``'s score equals nltk's ``sentence_bleu(samples[:i] + samples[i+1:], samples[i], ...)`` with
    weights ``(1/n,)*n`` and method1 smoothing; an identical copy of sample ``i`` elsewhere in the list stays
    among its references. Needs at least two samples. ``n`` / ``orders`` / ``per_sentence`` and the return
    value are as in :func:`bleu`.
    """
    orders_, single = _one_or_many(n, orders)
    if len(samples) < 2:
        raise ValueError(f"Self-BLEU needs at least 2 samples, got {len(samples)}")
    table, enc, ids = build_table(samples, max(orders_))
    top, n_top, second = kernels.leave_one_out_counts(ids, enc.offsets, table.n_ids)
    lengths, counts = _length_multiset(enc)
    scores = kernels.sentence_scores(ids, enc.offsets, lengths, counts, top, n_top, second,
                                     np.array(orders_, dtype=np.int64), True)
    result = _results(scores, orders_, per_sentence)
    return result[orders_[0]] if single else result
