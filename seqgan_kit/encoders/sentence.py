"""Sentence vectors from word vectors: the plain mean and SIF (Arora, Liang and Ma, ICLR 2017).

SIF ("smooth inverse frequency"): each word ``w`` of a sentence is weighted by ``a / (a + p(w))`` where ``p(w)``
is its unigram probability in the training corpus and ``a = 1e-3``; the sentence vector is the weighted
average of its word vectors (divided by the number of known words, as the paper's code does); finally the
projection on the first principal component ``u`` of a set of sentence vectors is removed:
``v <- v - (u . v) u``. As in the paper's code the component is the first right singular vector of the
*uncentred* matrix of sentence vectors.

Which set the component comes from matters for comparisons: an encoder run fixes it once, from its own
training sentences (``sif_pc`` in ``word2vec.safetensors``), so every set of sentences is embedded in the same
space. :func:`sif_embed` with ``pc=None`` computes it from the sentences given (the paper's transductive use).

Tokens without a vector are skipped; a sentence with no known token gets the zero vector (counted by
:func:`pool`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

SIF_A = 1e-3
POOL_CHUNK = 1 << 16
"""Token occurrences gathered at once by :func:`pool` (bounds its memory to ``POOL_CHUNK * d`` floats)."""


def sif_weights(counts: np.ndarray, a: float = SIF_A) -> np.ndarray:
    """``a / (a + p(w))`` for every word, ``p(w) = count / total`` (float64 ``[W]``)."""
    counts = np.asarray(counts, dtype=np.float64)
    if a <= 0:
        raise ValueError(f"the SIF parameter a must be positive, got {a}")
    total = counts.sum()
    if total <= 0:
        raise ValueError("word counts sum to zero")
    return a / (a + counts / total)


def pool(token_lists: Sequence[Sequence[str]], index: dict[str, int], vectors: np.ndarray,
         weights: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """Weighted average of the known tokens' vectors per sentence: ``[N, d]`` float64, and the number of
    sentences without a known token (zero rows). ``weights [W]`` (None: 1) weight the rows of ``vectors [W, d]``;
    the sum is divided by the number of known tokens."""
    rows, cols = [], []
    for i, tokens in enumerate(token_lists):
        for tok in tokens:
            j = index.get(tok)
            if j is not None:
                rows.append(i)
                cols.append(j)
    n = len(token_lists)
    rows_a, cols_a = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
    values = np.ones(len(rows_a)) if weights is None else np.asarray(weights, dtype=np.float64)[cols_a]
    table = torch.from_numpy(np.asarray(vectors, dtype=np.float64))  # [W, d]
    sums = torch.zeros(n, table.shape[1], dtype=torch.float64)  # [N, d]
    for lo in range(0, len(rows_a), POOL_CHUNK):  # each known token occurrence adds weight * vector to its row
        part = slice(lo, lo + POOL_CHUNK)
        weighted = table[torch.from_numpy(cols_a[part])] * torch.from_numpy(values[part])[:, None]  # [K, d]
        sums.index_add_(0, torch.from_numpy(rows_a[part]), weighted)
    sums = sums.numpy()
    known = np.bincount(rows_a, minlength=n).astype(np.float64)  # [N] known tokens per sentence
    out = np.divide(sums, known[:, None], out=np.zeros_like(sums), where=known[:, None] > 0)
    return out, int((known == 0).sum())


def first_component(x: np.ndarray) -> np.ndarray:
    """The first right singular vector ``[d]`` (unit length, sign fixed: largest entry positive) of ``x [N, d]``,
    uncentred, as in the SIF paper's code."""
    x = np.asarray(x, dtype=np.float64)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    u = vt[0]
    return u if u[np.argmax(np.abs(u))] >= 0 else -u


def remove_component(x: np.ndarray, u: np.ndarray) -> np.ndarray:
    """``x - (x u) u^T``: each row of ``x [N, d]`` without its projection on the unit vector ``u [d]``."""
    x = np.asarray(x, dtype=np.float64)
    u = np.asarray(u, dtype=np.float64)
    return x - np.outer(x @ u, u)  # [N, 1] * [1, d]


def mean_embed(token_lists: Sequence[Sequence[str]], index: dict[str, int], vectors: np.ndarray) -> np.ndarray:
    """Plain mean of the known tokens' vectors ``[N, d]``."""
    return pool(token_lists, index, vectors)[0]


def sif_embed(token_lists: Sequence[Sequence[str]], index: dict[str, int], vectors: np.ndarray,
              counts: np.ndarray, a: float = SIF_A, pc: np.ndarray | None = None) -> np.ndarray:
    """SIF sentence vectors ``[N, d]``: ``a/(a+p(w))``-weighted average, minus the projection on ``pc`` (the
    first principal component of these sentences when None)."""
    x, _ = pool(token_lists, index, vectors, sif_weights(counts, a))
    u = first_component(x) if pc is None else pc
    return remove_component(x, u)
