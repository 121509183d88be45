"""Exact integer ids for the n-grams of a set of token sequences (numpy only; no hashing collisions).

Sentences are flattened into one array of token ids with sentence offsets. The n-grams of order ``k`` get
dense ids order by order: a k-gram is the pair (id of its leading (k-1)-gram, its last token), packed into
one int64 ``prefix_id * vocab_size + token`` and numbered by its rank among the sorted distinct keys of the
dictionary side. Both factors stay below the number of tokens, so the packed key never overflows for any
order, and two n-grams get the same id exactly when they are equal token for token.

A :class:`NgramTable` is built once from the sentences that define the dictionary (the references, or the
samples for Self-BLEU); other sentences (hypotheses) are looked up in it by binary search, and their n-grams
that the dictionary lacks get id ``-1``.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from itertools import chain, repeat

import numpy as np

MAX_ORDER = 9

Sentences = Sequence[Sequence[Hashable]]


@dataclass(frozen=True)
class Encoded:
    """Sentences as one flat token-id array.

    ``tokens [P]`` int64 (``-1`` for a token outside the vocabulary), ``offsets [N+1]`` int64: sentence ``i``
    is ``tokens[offsets[i]:offsets[i+1]]``.
    """

    tokens: np.ndarray
    offsets: np.ndarray

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)


def _offsets(lengths: np.ndarray) -> np.ndarray:
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return offsets


def build_vocab(sentences: Sentences) -> dict[Hashable, int]:
    """Token -> dense id ``0..V-1``, numbered in order of first appearance."""
    unique = dict.fromkeys(chain.from_iterable(sentences))
    return dict(zip(unique, range(len(unique)), strict=True))


def encode(sentences: Sentences, vocab: dict[Hashable, int]) -> Encoded:
    """Map every token through ``vocab`` (unknown tokens -> -1); no Python-level loop over sentences."""
    lengths = np.fromiter(map(len, sentences), dtype=np.int64, count=len(sentences))
    flat = chain.from_iterable(sentences)
    total = int(lengths.sum())
    tokens = np.fromiter(map(vocab.get, flat, repeat(-1)), dtype=np.int64, count=total)
    return Encoded(tokens, _offsets(lengths))


def _start_mask(enc: Encoded, order: int) -> np.ndarray:
    """``[P]`` bool: position p starts an n-gram of this order inside its own sentence."""
    ends = np.repeat(enc.offsets[1:], enc.lengths)  # [P] end offset of each position's sentence
    return np.arange(len(enc.tokens), dtype=np.int64) + order <= ends


def _next_tokens(tokens: np.ndarray, shift: int) -> np.ndarray:
    """``[P]``: ``tokens[p + shift]``, ``-1`` past the end."""
    out = np.full(len(tokens), -1, dtype=np.int64)
    if shift < len(tokens):
        out[: len(tokens) - shift] = tokens[shift:]
    return out


@dataclass(frozen=True)
class NgramTable:
    """The distinct n-grams of the dictionary sentences, orders ``1..max_order``.

    ``keys[k-1]`` are the sorted packed keys of the order-k n-grams; n-gram ids are global across orders:
    order k's ids are ``base[k-1] + rank in keys[k-1]``, ``base[max_order]`` is the total number of ids.
    """

    vocab: dict[Hashable, int]
    max_order: int
    keys: tuple[np.ndarray, ...]
    base: np.ndarray

    @property
    def n_ids(self) -> int:
        return int(self.base[-1])


def build_table(sentences: Sentences, max_order: int) -> tuple[NgramTable, Encoded, np.ndarray]:
    """Index ``sentences`` (the dictionary side).

    Returns the table, the encoded sentences and their n-gram ids ``[max_order, P]`` int64: entry
    ``[k-1, p]`` is the global id of the order-k n-gram starting at position p, or -1 where none starts.
    """
    vocab = build_vocab(sentences)
    enc = encode(sentences, vocab)
    v = max(len(vocab), 1)
    ids = np.full((max_order, len(enc.tokens)), -1, dtype=np.int64)
    keys: list[np.ndarray] = []
    base = np.zeros(max_order + 1, dtype=np.int64)
    local = enc.tokens  # order-1 local ids are the token ids
    for k in range(1, max_order + 1):
        mask = _start_mask(enc, k)
        if k == 1:
            key = enc.tokens
        else:
            key = np.where(mask, local * v + _next_tokens(enc.tokens, k - 1), -1)
        uniq = np.unique(key[mask])
        local = np.full(len(enc.tokens), -1, dtype=np.int64)
        local[mask] = np.searchsorted(uniq, key[mask])
        keys.append(uniq)
        base[k] = base[k - 1] + len(uniq)
        ids[k - 1] = np.where(mask, local + base[k - 1], -1)
    return NgramTable(vocab, max_order, tuple(keys), base), enc, ids


def lookup(table: NgramTable, sentences: Sentences,
           max_order: int | None = None) -> tuple[Encoded, np.ndarray]:
    """Encode ``sentences`` against an existing table: their n-gram ids ``[max_order, P]`` (-1: not in it)."""
    max_order = table.max_order if max_order is None else max_order
    if max_order > table.max_order:
        raise ValueError(f"the table holds orders up to {table.max_order}, asked for {max_order}")
    enc = encode(sentences, table.vocab)
    v = max(len(table.vocab), 1)
    ids = np.full((max_order, len(enc.tokens)), -1, dtype=np.int64)
    local = enc.tokens
    for k in range(1, max_order + 1):
        mask = _start_mask(enc, k) & (local >= 0)
        if k > 1:
            nxt = _next_tokens(enc.tokens, k - 1)
            mask &= nxt >= 0
            key = np.where(mask, local * v + nxt, 0)
        else:
            key = np.where(mask, local, 0)
        uniq = table.keys[k - 1]
        pos = np.searchsorted(uniq, key)
        found = mask & (pos < len(uniq))
        found[found] = uniq[pos[found]] == key[found]
        local = np.where(found, pos, -1)
        ids[k - 1] = np.where(found, pos + table.base[k - 1], -1)
    return enc, ids
