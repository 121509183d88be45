"""Numba kernels behind :mod:`seqgan_kit.metrics.bleu`: reference count tables and per-hypothesis scores.

The float arithmetic follows ``nltk.translate.bleu_score.sentence_bleu`` with ``SmoothingFunction().method1``
step for step, so that scores are bit-identical:

- precision ``p_i = numerator / denominator`` (an exact integer ratio rounded once, as
  ``float(Fraction)``), or ``(0 + 0.1) / denominator`` when no n-gram of order i matches;
- ``math.fsum`` of ``(1/n) * log(p_i)`` over ``i = 1..n`` (an exactly rounded sum, reimplemented here);
- ``bp * exp(sum)`` with ``bp = exp(1 - r / c)`` for ``c <= r``, else 1;
- 0 when no unigram matches (nltk's early exit), which also covers the empty hypothesis.

``log`` and ``exp`` compile to the C library's functions, the same ones CPython's ``math`` calls.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True)
def exact_sum(values):
    """Correctly rounded sum of a float64 array (the result of ``math.fsum``; finite inputs).

    Shewchuk's method: keep a list of non-overlapping partial sums whose exact total is the running sum,
    then add them from the largest down, correcting the final rounding for ties (round half to even).
    """
    partials = np.empty(len(values) + 1, dtype=np.float64)
    n = 0
    for v in values:
        x = v
        kept = 0
        for j in range(n):
            y = partials[j]
            if abs(x) < abs(y):
                x, y = y, x
            hi = x + y
            lo = y - (hi - x)
            if lo != 0.0:
                partials[kept] = lo
                kept += 1
            x = hi
        n = kept
        if x != 0.0:
            partials[n] = x
            n += 1
    if n == 0:
        return 0.0
    n -= 1
    hi = partials[n]
    lo = 0.0
    while n > 0:
        x = hi
        n -= 1
        y = partials[n]
        hi = x + y
        lo = y - (hi - x)
        if lo != 0.0:
            break
    # hi + lo is exact; if the partials below lo push past half an ulp in lo's direction, round away.
    if n > 0 and ((lo < 0.0 and partials[n - 1] < 0.0) or (lo > 0.0 and partials[n - 1] > 0.0)):
        y = lo * 2.0
        x = hi + y
        if y == x - hi:
            hi = x
    return hi


@njit(cache=True)
def reference_max_counts(ids, offsets, n_ids):
    """Per n-gram id, the largest count of that n-gram within any one sentence.

    ``ids [K, P]`` global n-gram ids (-1 = none), ``offsets [N+1]``; returns ``[n_ids]`` int32.
    """
    best = np.zeros(n_ids, dtype=np.int32)
    n_orders = ids.shape[0]
    for s in range(len(offsets) - 1):
        start = offsets[s]
        length = offsets[s + 1] - start
        for k in range(1, n_orders + 1):
            m = length - k + 1
            if m <= 0:
                break
            buf = np.sort(ids[k - 1, start : start + m])
            i = 0
            while i < m:
                j = i + 1
                while j < m and buf[j] == buf[i]:
                    j += 1
                if buf[i] >= 0 and j - i > best[buf[i]]:
                    best[buf[i]] = j - i
                i = j
    return best


@njit(cache=True)
def leave_one_out_counts(ids, offsets, n_ids):
    """Per n-gram id over all sentences: the largest in-sentence count, how many sentences reach it, and the
    largest count once one of those sentences is set aside (the second largest, or the largest again when
    two sentences tie). Returns three ``[n_ids]`` int32 arrays ``(top, n_top, second)``.
    """
    top = np.zeros(n_ids, dtype=np.int32)
    n_top = np.zeros(n_ids, dtype=np.int32)
    second = np.zeros(n_ids, dtype=np.int32)
    n_orders = ids.shape[0]
    for s in range(len(offsets) - 1):
        start = offsets[s]
        length = offsets[s + 1] - start
        for k in range(1, n_orders + 1):
            m = length - k + 1
            if m <= 0:
                break
            buf = np.sort(ids[k - 1, start : start + m])
            i = 0
            while i < m:
                j = i + 1
                while j < m and buf[j] == buf[i]:
                    j += 1
                g = buf[i]
                c = j - i
                if c > top[g]:
                    second[g] = top[g]
                    top[g] = c
                    n_top[g] = 1
                elif c == top[g]:
                    n_top[g] += 1
                    second[g] = c
                elif c > second[g]:
                    second[g] = c
                i = j
    return top, n_top, second


@njit(cache=True)
def _closest_length(lengths, counts, hyp_len, leave_one_out):
    """nltk's closest reference length: smallest ``|r - c|``, ties to the shorter ``r``.

    ``lengths`` sorted distinct reference lengths with multiplicities ``counts``; with ``leave_one_out`` one
    sentence of length ``hyp_len`` (the hypothesis itself) is set aside.
    """
    n = len(lengths)
    lo = np.searchsorted(lengths, hyp_len, side="right") - 1  # largest length <= hyp_len
    hi = np.searchsorted(lengths, hyp_len, side="left")  # smallest length >= hyp_len
    if leave_one_out:
        if lo >= 0 and lengths[lo] == hyp_len and counts[lo] == 1:
            lo -= 1
        if hi < n and lengths[hi] == hyp_len and counts[hi] == 1:
            hi += 1
    if lo < 0:
        return lengths[hi]
    if hi >= n:
        return lengths[lo]
    if hyp_len - lengths[lo] <= lengths[hi] - hyp_len:
        return lengths[lo]
    return lengths[hi]


@njit(cache=True)
def _score_one(h, ids, offsets, lengths, length_counts, top, n_top, second, orders, leave_one_out, out):
    """Score hypothesis ``h`` for every order in ``orders`` into ``out[h]`` (see :func:`sentence_scores`)."""
    n_orders = ids.shape[0]
    start = offsets[h]
    length = offsets[h + 1] - start
    numerators = np.zeros(n_orders, dtype=np.int64)
    denominators = np.ones(n_orders, dtype=np.int64)
    for k in range(1, n_orders + 1):
        m = length - k + 1
        if m <= 0:
            break
        denominators[k - 1] = m
        buf = np.sort(ids[k - 1, start : start + m])
        matched = 0
        i = 0
        while i < m:
            j = i + 1
            while j < m and buf[j] == buf[i]:
                j += 1
            g = buf[i]
            if g >= 0:
                c = j - i
                ref = top[g]
                if leave_one_out and c == ref and n_top[g] == 1:
                    ref = second[g]
                matched += min(c, ref)
            i = j
        numerators[k - 1] = matched
    if numerators[0] == 0:
        return  # nltk returns 0 without smoothing when no unigram matches (the empty hypothesis too)
    closest = _closest_length(lengths, length_counts, length, leave_one_out)
    if length > closest:
        bp = 1.0
    else:
        bp = math.exp(1.0 - closest / length)
    terms = np.empty(n_orders, dtype=np.float64)
    for o in range(len(orders)):
        n = orders[o]
        w = 1.0 / n
        for i in range(n):
            if numerators[i] == 0:
                p = 0.1 / denominators[i]
            else:
                p = numerators[i] / denominators[i]
            terms[i] = w * math.log(p)
        out[h, o] = bp * math.exp(exact_sum(terms[:n]))


@njit(cache=True)
def sentence_scores(ids, offsets, lengths, length_counts, top, n_top, second, orders, leave_one_out):
    """BLEU-n of every hypothesis, for each n in ``orders``; returns ``[N, len(orders)]`` float64.

    ``ids [K, P]`` the hypotheses' global n-gram ids (-1: absent from the references), ``offsets [N+1]``,
    ``lengths``/``length_counts`` the sorted distinct reference lengths and their multiplicities.
    Plain BLEU: ``top`` holds the max reference counts (``n_top``, ``second`` unused). Leave-one-out: the
    hypotheses are the reference sentences themselves and ``(top, n_top, second)`` come from
    :func:`leave_one_out_counts`; a hypothesis that alone reaches the top count of an n-gram is clipped by
    ``second`` instead.

    Serial on purpose: this loop takes about 3 microseconds per hypothesis, a small part of the total next to
    the n-gram indexing, and a ``prange`` version measured no faster on the 2-core machine (shared with other
    processes) while it added compile time.
    """
    out = np.zeros((len(offsets) - 1, len(orders)), dtype=np.float64)
    for h in range(len(offsets) - 1):
        _score_one(h, ids, offsets, lengths, length_counts, top, n_top, second, orders, leave_one_out, out)
    return out
